"""The readiness a live pass's first proxy sync assumes (live/sync.py assumed_ready)."""
from netlab.live.sync import assumed_ready


def test_a_probe_that_says_ready_follows_what_was_seen_listening():
    rec = {"uid": "u", "ready": False, "listening": True}   # listening, held back by the probe until now
    assert assumed_ready(rec, "u", True) is True
    assert assumed_ready(rec, "u", None) is False           # no verdict: as the last pass saw it
    assert assumed_ready(rec, "u", False) is False


def test_not_listening_stays_not_ready_whatever_the_probe_says():
    rec = {"uid": "u", "ready": False, "listening": False}
    assert assumed_ready(rec, "u", True) is False


def test_records_of_before_the_listening_flag_and_other_pods():
    assert assumed_ready({"uid": "u", "ready": True}, "u", True) is True
    assert assumed_ready({"uid": "u", "ready": False}, "u", True) is False
    assert assumed_ready({"uid": "u"}, "u", None) is True      # never seen not ready
    assert assumed_ready({"uid": "old", "ready": True, "listening": True}, "u", True) is False
    assert assumed_ready({}, "u", True) is False
