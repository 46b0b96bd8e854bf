"""Decides, every tick, whether the node may follow the policy or must hold position.

Holding is latched: once tripped, the node holds until the inputs are healthy again and either
`auto_resume` is on (after `resume_after_s` of health) or someone calls `resume()`. An operator hold
(`hold()`) never resumes on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from groot_ros.execution.config import WatchdogConfig

RUNNING = "running"
HOLDING = "holding"


@dataclass(frozen=True)
class WatchdogStatus:
    state: str  # RUNNING | HOLDING
    reasons: tuple[str, ...]  # why holding: current problems, else those that tripped it
    changed: bool  # state changed on this update

    @property
    def holding(self) -> bool:
        return self.state == HOLDING


class Watchdog:
    def __init__(self, config: WatchdogConfig):
        self.config = config
        self.state = RUNNING
        self.reasons: tuple[str, ...] = ()
        self.trips = 0
        self._problems: tuple[str, ...] = ()
        self._healthy_since: float | None = None
        self._operator_hold = False

    def problems(self, sensor_problems: Sequence[str], inference_latency_s: float | None,
                 worker_alive: bool) -> tuple[str, ...]:
        found = list(sensor_problems)
        limit = self.config.max_inference_latency_s
        if inference_latency_s is not None and not inference_latency_s <= limit:
            found.append(f"inference took {inference_latency_s:.3f} s > limit {limit:g} s")
        if not worker_alive:
            found.append("inference worker crashed")
        return tuple(found)

    def update(self, now: float, sensor_problems: Sequence[str] = (), inference_latency_s: float | None = None,
               worker_alive: bool = True) -> WatchdogStatus:
        """sensor_problems: one line per stale/invalid input (empty: all fresh); inference_latency_s: the
        slowest of the last finished and the running inference."""
        self._problems = self.problems(sensor_problems, inference_latency_s, worker_alive)
        if self._problems:
            self._healthy_since = None
            if self.state == RUNNING:
                return self._trip(self._problems)
            self.reasons = self._problems
            return WatchdogStatus(self.state, self.reasons, False)
        if self._healthy_since is None:
            self._healthy_since = now
        if (self.state == HOLDING and self.config.auto_resume and not self._operator_hold
                and now - self._healthy_since >= self.config.resume_after_s):
            return self._resume()
        return WatchdogStatus(self.state, self.reasons, False)

    def hold(self, reason: str) -> WatchdogStatus:
        """Operator hold (pause): stays until resume(), whatever auto_resume says."""
        self._operator_hold = True
        if self.state == HOLDING:
            self.reasons = self.reasons + (reason,)
            return WatchdogStatus(self.state, self.reasons, False)
        return self._trip((reason,))

    def resume(self) -> WatchdogStatus:
        """Manual resume; refused (still holding) while any input is unhealthy."""
        if self.state == RUNNING or self._problems:
            return WatchdogStatus(self.state, self.reasons, False)
        return self._resume()

    def _trip(self, reasons: tuple[str, ...]) -> WatchdogStatus:
        self.state, self.reasons = HOLDING, reasons
        self.trips += 1
        return WatchdogStatus(self.state, self.reasons, True)

    def _resume(self) -> WatchdogStatus:
        self.state, self.reasons, self._operator_hold = RUNNING, (), False
        return WatchdogStatus(self.state, (), True)


def slowest_inference(last_latency_s: float | None, pending_since: float | None, now: float) -> float | None:
    """The latency the watchdog judges: a hung inference counts while it runs, not only when it returns."""
    running = None if pending_since is None else now - pending_since
    values = [v for v in (last_latency_s, running) if v is not None]
    return max(values) if values else None
