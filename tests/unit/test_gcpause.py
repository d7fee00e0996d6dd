"""gc_paused: the collector paused inside, running again after; in a process that ends with its command
(the CLI's main), what is alive is frozen instead of collected."""
import gc

from netlab import gcpause


def test_paused_inside_restored_after_and_reentrant():
    seen = []

    @gcpause.gc_paused
    def inner():
        seen.append(gc.isenabled())

    @gcpause.gc_paused
    def outer():
        inner()
        seen.append(gc.isenabled())

    assert gc.isenabled()
    outer()
    assert seen == [False, False] and gc.isenabled()
    gc.disable()
    try:
        outer()
        assert not gc.isenabled()   # a collector that was off stays off
    finally:
        gc.enable()


def test_a_command_that_ends_the_process_freezes_instead_of_collecting():
    gc.unfreeze()
    before = gc.get_freeze_count()
    assert before == 0
    try:
        gcpause.ends_with_command()
        kept = [[i] for i in range(1000)]   # noqa: F841 - alive across the call

        @gcpause.gc_paused
        def work():
            return len(gc.get_objects(0))

        work()
        assert gc.isenabled() and gc.get_freeze_count() > 1000
        gc.unfreeze()
        gcpause.runs_on()   # (netlab agent): collected as usual again
        work()
        assert gc.get_freeze_count() == 0
    finally:
        gcpause.runs_on()
        gc.unfreeze()
