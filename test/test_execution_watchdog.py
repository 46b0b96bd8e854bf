"""Watchdog: lists stale sensors, slow inference or a dead worker; says when an automatic resume is due."""

import pytest

from groot_ros.execution.config import WatchdogConfig
from groot_ros.execution.watchdog import Watchdog, slowest_inference


def test_problems_and_the_healthy_clock():
    dog = Watchdog(WatchdogConfig(auto_resume=False))
    assert dog.update(0.0).ok
    health = dog.update(0.01, ["joints stale: 0.3 s old"])
    assert health.problems == ("joints stale: 0.3 s old",) and dog.problems == health.problems
    assert dog.update(0.02).healthy_for_s == 0.0
    health = dog.update(3.0)
    assert health.ok and health.healthy_for_s == pytest.approx(2.98)
    assert not dog.auto_resume_due(health)  # auto_resume off: a person decides


def test_auto_resume_after_inputs_stay_healthy():
    dog = Watchdog(WatchdogConfig(auto_resume=True, resume_after_s=0.5))
    dog.update(0.0, ["claws stale"])
    assert not dog.auto_resume_due(dog.update(1.0))
    dog.update(1.2, ["claws stale"])  # relapse restarts the clock
    dog.update(1.3)
    assert not dog.auto_resume_due(dog.update(1.79))
    assert dog.auto_resume_due(dog.update(1.8))


@pytest.mark.parametrize("kwargs, reason", [
    ({"inference_latency_s": 1.5}, "inference took 1.500 s > limit 1 s"),
    ({"inference_latency_s": float("nan")}, "inference took nan s > limit 1 s"),
    ({"worker_alive": False}, "inference worker crashed (~start restarts it)"),
])
def test_inference_problems(kwargs, reason):
    dog = Watchdog(WatchdogConfig(max_inference_latency_s=1.0))
    assert dog.update(0.0, inference_latency_s=0.9).ok
    assert dog.update(0.01, **kwargs).problems == (reason,)


def test_slowest_inference_counts_a_running_one():
    assert slowest_inference(None, None, 3.0) is None
    assert slowest_inference(0.1, None, 3.0) == 0.1
    assert slowest_inference(0.1, 1.0, 3.0) == 2.0
