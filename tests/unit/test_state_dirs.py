"""state.ensure_dirs against another lab's `down`, which removes RUN_DIR when it empties it: the removal can
fall between making RUN_DIR and making the lab's directory in it; ensure_dirs makes them again."""
from netlab.dataplane import layout, state


def test_ensure_dirs_survives_run_dir_removed_in_between(tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(layout, "RUN_DIR", str(run))
    real, calls = state.private_dir, []

    def racing(path):
        calls.append(path)
        if len(calls) == 2:            # RUN_DIR made; another lab's down removes it before the lab's own
            run.rmdir()
            raise FileNotFoundError(path)
        return real(path)

    monkeypatch.setattr(state, "private_dir", racing)
    assert state.ensure_dirs("a") == str(run / "a")
    assert (run / "a" / "logs").is_dir() and (run / "a" / "run").is_dir()
