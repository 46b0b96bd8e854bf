"""Watchdog: trips on stale sensors, slow inference or a dead worker; resumes only as configured."""

import pytest

from groot_ros.execution.config import WatchdogConfig
from groot_ros.execution.watchdog import RUNNING, Watchdog, slowest_inference


def test_stale_sensor_trips_and_waits_for_manual_resume():
    dog = Watchdog(WatchdogConfig(auto_resume=False))
    assert dog.update(0.0).state == RUNNING
    status = dog.update(0.01, ["joints stale: 0.3 s old"])
    assert status.holding and status.changed and status.reasons == ("joints stale: 0.3 s old",)
    assert not dog.resume().changed  # still stale: refused
    for t in range(2, 300):
        assert dog.update(t * 0.01).holding  # healthy, but no auto resume
    status = dog.resume()
    assert status.state == RUNNING and status.changed
    assert dog.trips == 1


def test_auto_resume_after_inputs_stay_healthy():
    dog = Watchdog(WatchdogConfig(auto_resume=True, resume_after_s=0.5))
    dog.update(0.0, ["claws stale"])
    assert dog.update(1.0).holding
    assert dog.update(1.2, ["claws stale"]).holding  # relapse restarts the clock
    assert dog.update(1.3).holding
    assert dog.update(1.79).holding
    status = dog.update(1.8)
    assert status.state == RUNNING and status.changed


@pytest.mark.parametrize("kwargs, reason", [
    ({"inference_latency_s": 1.5}, "inference took 1.500 s > limit 1 s"),
    ({"inference_latency_s": float("nan")}, "inference took nan s > limit 1 s"),
    ({"worker_alive": False}, "inference worker crashed"),
])
def test_inference_problems_trip(kwargs, reason):
    dog = Watchdog(WatchdogConfig(max_inference_latency_s=1.0))
    assert not dog.update(0.0, inference_latency_s=0.9).holding
    assert dog.update(0.01, **kwargs).reasons == (reason,)


def test_operator_hold_never_auto_resumes():
    dog = Watchdog(WatchdogConfig(auto_resume=True, resume_after_s=0.0))
    assert dog.hold("operator pause").holding
    assert dog.update(5.0).holding
    assert dog.resume().state == RUNNING


def test_slowest_inference_counts_a_running_one():
    assert slowest_inference(None, None, 3.0) is None
    assert slowest_inference(0.1, None, 3.0) == 0.1
    assert slowest_inference(0.1, 1.0, 3.0) == 2.0
