"""Operator lifecycle of the policy node (start / pause / resume / stop), without ROS.

idle     loaded, nothing commanded, arm modes untouched (real_robot.launch starts here)
running  chunks are executed (or only published, in dry run)
paused   the robot holds its last safe command; inference results are discarded
stopped  nothing commanded, arm modes restored; `start` engages again
The watchdog's own holds live in the execution core; this is only what a person asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

IDLE, RUNNING, PAUSED, STOPPED = "idle", "running", "paused", "stopped"

_ALLOWED = {
    "start": (IDLE, STOPPED),
    "pause": (RUNNING,),
    "resume": (PAUSED,),
    "stop": (IDLE, RUNNING, PAUSED),
}
_TARGET = {"start": RUNNING, "pause": PAUSED, "resume": RUNNING, "stop": STOPPED}


@dataclass(frozen=True)
class Transition:
    ok: bool
    state: str
    message: str


class Lifecycle:
    def __init__(self) -> None:
        self.state = IDLE

    def request(self, action: str) -> Transition:
        """Checks whether `action` is allowed now; the caller applies side effects, then calls `commit`."""
        if action not in _ALLOWED:
            raise ValueError(f"unknown lifecycle action '{action}'")
        if self.state not in _ALLOWED[action]:
            return Transition(False, self.state, f"cannot {action} while {self.state}")
        return Transition(True, _TARGET[action], f"{action}: {self.state} -> {_TARGET[action]}")

    def commit(self, transition: Transition) -> None:
        if transition.ok:
            self.state = transition.state

    @property
    def commanding(self) -> bool:
        """True while commands flow to the robot (running, or holding still while paused)."""
        return self.state in (RUNNING, PAUSED)
