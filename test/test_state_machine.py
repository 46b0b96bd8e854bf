"""The node's one state machine: every transition, refused ones included, and the ~resume-after-a-hold case."""

import threading

import pytest

from groot_ros.execution.state_machine import (HOLDING, IDLE, PAUSED, RUNNING, STARTING, STATES, STOPPED, STOPPING,
                                               StateMachine)


def _at(state: str) -> StateMachine:
    return StateMachine(state)


def test_start_up_and_its_failure():
    m = StateMachine()
    assert m.state == IDLE and not m.commanding
    assert m.start().state == STARTING and not m.commanding
    assert not m.start().ok  # already starting
    assert m.started().state == RUNNING and m.commanding and m.reasons == ()
    m = _at(STARTING)
    t = m.start_failed("arms not at the start pose within 8 s")
    assert t.ok and m.state == STOPPING and m.reason() == "start-up failed: arms not at the start pose within 8 s"
    assert m.stopped("arm mode restored to 1 (read back)").state == STOPPED
    assert m.reasons == ("start-up failed: arms not at the start pose within 8 s", "arm mode restored to 1 (read back)")
    assert m.start().state == STARTING and m.reasons == ()  # a new start forgets the old reasons


@pytest.mark.parametrize("state", [s for s in STATES if s not in (IDLE, STOPPED)])
def test_start_refused_unless_idle_or_stopped(state):
    t = _at(state).start()
    assert not t.ok and t.state == state and f"cannot start while {state}" in t.message


def test_hold_from_running_counts_a_trip_and_keeps_current_reasons():
    m = _at(RUNNING)
    assert m.hold(["head stale: 0.6 s old"]).state == HOLDING and m.trips == 1
    m.hold(["head stale: 0.9 s old", "joints stale"])
    assert m.reasons == ("head stale: 0.9 s old", "joints stale") and m.trips == 1
    assert m.hold([]).ok and m.reasons == ("unspecified failure",)


@pytest.mark.parametrize("state", [IDLE, STARTING, STOPPING, STOPPED])
def test_hold_refused_outside_commanding_states(state):
    assert not _at(state).hold(["x"]).ok


def test_resume_leaves_holding_once_inputs_are_healthy():
    """The bug this replaces: ~resume answered 'cannot resume while running' during a watchdog hold."""
    m = _at(RUNNING)
    m.hold(["head stale"])
    refused = m.resume(["head stale"])
    assert not refused.ok and m.state == HOLDING and "inputs not healthy: head stale" in refused.message
    assert m.resume([]).state == RUNNING and m.reasons == ()


def test_pause_and_resume_from_running_and_holding():
    m = _at(RUNNING)
    assert m.pause().state == PAUSED and m.reason() == "paused by operator"
    m.hold(["claws stale"])  # a failure while paused: still paused, both reasons said
    assert m.state == PAUSED and m.reasons == ("paused by operator", "claws stale")
    assert not m.resume(["claws stale"]).ok and m.state == PAUSED
    assert m.resume().state == RUNNING
    m.hold(["x"])
    assert m.pause().state == PAUSED and m.held


@pytest.mark.parametrize("state", [IDLE, STARTING, STOPPING, STOPPED])
def test_pause_and_resume_refused_elsewhere(state):
    m = _at(state)
    assert not m.pause().ok and not m.resume().ok and m.state == state
    assert "already running" in _at(RUNNING).resume().message


@pytest.mark.parametrize("state", [IDLE, STARTING, RUNNING, HOLDING, PAUSED])
def test_stop_from_every_live_state(state):
    m = _at(state)
    t = m.stop("~stop called")
    assert t.ok and m.state == STOPPING and not m.commanding
    assert not m.stop("again").ok  # stopping already: the exit steps run once
    assert m.stopped("arm mode restored").state == STOPPED


def test_stopped_only_from_stopping():
    for state in (IDLE, RUNNING, STOPPED):
        assert not _at(state).stopped("x").ok


def test_unknown_state_is_an_error():
    with pytest.raises(ValueError, match="unknown state"):
        StateMachine("flying")


def test_concurrent_callers_see_one_consistent_state():
    """1000 random operator calls from 4 threads: every reached state is a known one, stop always wins."""
    import random

    m = _at(RUNNING)
    rng = random.Random(0)
    calls = [m.pause, m.resume, lambda: m.hold(["x"]), lambda: m.resume(["x"])]
    seen: list[str] = []  # checked here: an assert inside a thread would only be a warning

    def worker():
        for _ in range(250):
            seen.append(rng.choice(calls)().state)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 1000 and set(seen) <= {RUNNING, HOLDING, PAUSED}, set(seen)
    assert m.state in (RUNNING, HOLDING, PAUSED)
    assert m.stop("end").ok and m.state == STOPPING


def test_input_monitor_finds_frozen_cameras_and_stamp_jumps():
    from groot_ros.execution.inputs import InputMonitor, digest

    mon = InputMonitor(frozen_after_s=1.0, max_stamp_offset_s=0.5)
    assert InputMonitor().frozen_after_s is None  # off unless configured
    same = digest(b"\x00" * 100)
    for k in range(20):  # 10 Hz, fresh stamps, identical image
        mon.update("head", k * 0.1, k * 0.1, same)
    assert mon.problems(1.9) == ["head: frozen, the same image for 1.9 s (limit 1 s)"]
    mon.update("head", 2.0, 2.0, digest(b"\x01" * 100))
    assert mon.problems(2.0) == []
    mon.update("joints", 2.0, 5.0)
    assert mon.problems(2.0) == ["joints: header stamp 3.00 s in the future of its arrival (limit 0.5 s)"]
    mon.update("joints", 2.1, 1.0)
    assert "in the past" in mon.problems(2.1)[0]
    mon.update("joints", 2.2, None)  # no stamp: no offset to judge; the jump back (5 -> 1) shows for 1 s
    assert mon.problems(2.2) == ["joints: header stamp jumped back 4.00 s (clock jumped back)"]
    assert not [p for p in mon.problems(3.2) if p.startswith("joints")]
