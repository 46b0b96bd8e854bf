"""Judges, every tick, whether the node's inputs are healthy; the hold itself lives in the state machine.

The watchdog has no state of its own beyond a clock: it lists the current problems (stale or invalid inputs,
slow or hung inference, inference too slow for the chunk's horizon, a dead worker) and says when an automatic
resume is due (`auto_resume` on and the inputs healthy for `resume_after_s`). ControlStep turns that into
StateMachine.hold / resume. A latency problem is judged on the latest inference, so it clears only when the
model runs again: `latency_problem` tells the worker to keep inferring (without commanding) while held on it.
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
        self.latency_problem = ""  # the inference latency part of `problems` ("" when none)
        self._healthy_since: float | None = None

    def restart_clock(self) -> None:
        """The node's clock jumped back: "healthy since" belongs to the old time base."""
        self._healthy_since = None

    def check(self, sensor_problems: Sequence[str], inference_latency_s: float | None, worker_alive: bool,
              horizon_s: float | None = None) -> tuple[str, ...]:
        found = list(sensor_problems)
        self.latency_problem = self.latency_check(inference_latency_s, horizon_s)
        if self.latency_problem:
            found.append(self.latency_problem)
        if not worker_alive:
            found.append("inference worker crashed (~start restarts it)")
        return tuple(found)

    def latency_check(self, latency_s: float | None, horizon_s: float | None) -> str:
        """Too slow for the limit, or (async) at least as slow as a chunk lasts: then every chunk arrives with all
        its rows in the past and is refused as late, and the robot would stand still while "running"."""
        limit = self.config.max_inference_latency_s
        if latency_s is None:
            return ""
        if not latency_s <= limit:
            return f"inference took {latency_s:.3f} s > limit {limit:g} s"
        if horizon_s is not None and latency_s >= horizon_s:
            return (f"inference took {latency_s:.3f} s >= the chunk's horizon {horizon_s:g} s: every chunk would "
                    f"arrive late")
        return ""

    def update(self, now: float, sensor_problems: Sequence[str] = (), inference_latency_s: float | None = None,
               worker_alive: bool = True, horizon_s: float | None = None) -> Health:
        """sensor_problems: one line per stale/invalid input; inference_latency_s: the slowest of the last
        finished and the running inference; horizon_s: how long a chunk lasts after its observation (async)."""
        self.problems = self.check(sensor_problems, inference_latency_s, worker_alive, horizon_s)
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
