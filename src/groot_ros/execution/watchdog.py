"""Judges, every tick, whether the node's inputs are healthy; the hold itself lives in the state machine.

The watchdog has no state of its own beyond a clock: it lists the current problems (stale or invalid inputs,
slow or hung inference, a dead worker) and says when an automatic resume is due (`auto_resume` on and the
inputs healthy for `resume_after_s`). ControlStep turns that into StateMachine.hold / resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from groot_ros.execution.config import WatchdogConfig


@dataclass(frozen=True)
class Health:
    problems: tuple[str, ...]  # one line per problem; empty: healthy
    healthy_for_s: float  # how long the inputs have been healthy (0 while a problem lasts)

    @property
    def ok(self) -> bool:
        return not self.problems


class Watchdog:
    def __init__(self, config: WatchdogConfig):
        self.config = config
        self.problems: tuple[str, ...] = ()  # as of the last update
        self._healthy_since: float | None = None

    def check(self, sensor_problems: Sequence[str], inference_latency_s: float | None,
              worker_alive: bool) -> tuple[str, ...]:
        found = list(sensor_problems)
        limit = self.config.max_inference_latency_s
        if inference_latency_s is not None and not inference_latency_s <= limit:
            found.append(f"inference took {inference_latency_s:.3f} s > limit {limit:g} s")
        if not worker_alive:
            found.append("inference worker crashed (~start restarts it)")
        return tuple(found)

    def update(self, now: float, sensor_problems: Sequence[str] = (), inference_latency_s: float | None = None,
               worker_alive: bool = True) -> Health:
        """sensor_problems: one line per stale/invalid input; inference_latency_s: the slowest of the last
        finished and the running inference."""
        self.problems = self.check(sensor_problems, inference_latency_s, worker_alive)
        if self.problems:
            self._healthy_since = None
            return Health(self.problems, 0.0)
        if self._healthy_since is None:
            self._healthy_since = now
        return Health((), now - self._healthy_since)

    def auto_resume_due(self, health: Health) -> bool:
        return health.ok and self.config.auto_resume and health.healthy_for_s >= self.config.resume_after_s


def slowest_inference(last_latency_s: float | None, pending_since: float | None, now: float) -> float | None:
    """The latency the watchdog judges: a hung inference counts while it runs, not only when it returns."""
    running = None if pending_since is None else now - pending_since
    values = [v for v in (last_latency_s, running) if v is not None]
    return max(values) if values else None
