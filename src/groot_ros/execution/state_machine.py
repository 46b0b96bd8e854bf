"""The policy node's one state machine (no ROS): what the node is doing and why, for ~status and /diagnostics.

    idle --start--> starting --started--> running --hold(reasons)--> holding --resume (inputs healthy)--> running
                        |                    |  ^                      |  ^
                  start_failed            pause  resume (healthy)    pause |
                        |                    v  |                      v  |
                        |                   paused <-------------------'  | hold/failure while paused keeps paused
                        v
    any of idle, starting, running, holding, paused, operator --stop--> stopping --stopped(report)--> stopped --> ...

    running, holding, paused --takeover--> operator --release (inputs healthy)--> running (a fresh ramp)

In operator the node commands nothing (the operator's teleoperation does) and records what the operator sends.

Every transition is one method returning a Transition (ok, state, message); a refused one changes nothing and
says why. The watchdog (inputs, inference latency, the worker) only reports problems; the hold itself, its
reasons and the way out of it live here, so ~resume, ~status and the control loop can never disagree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

IDLE, STARTING, RUNNING, HOLDING, PAUSED, OPERATOR, STOPPING, STOPPED = (
    "idle", "starting", "running", "holding", "paused", "operator", "stopping", "stopped")
STATES = (IDLE, STARTING, RUNNING, HOLDING, PAUSED, OPERATOR, STOPPING, STOPPED)
COMMANDING = (RUNNING, HOLDING, PAUSED)  # the control loop sends commands (policy or the held pose)
HELD = (HOLDING, PAUSED)  # the control loop sends the last safe command


@dataclass(frozen=True)
class Transition:
    ok: bool
    state: str  # the state after the call (unchanged when refused)
    message: str


class StateMachine:
    """Thread-safe: the control loop, the worker, the services and the shutdown hook all call it."""

    def __init__(self, state: str = IDLE) -> None:
        if state not in STATES:
            raise ValueError(f"unknown state '{state}'; known: {STATES}")
        self.state = state
        self.reasons: tuple[str, ...] = ()
        self.trips = 0  # holds entered from running
        self._lock = threading.RLock()

    # -- queries -------------------------------------------------------------------------------------------

    @property
    def commanding(self) -> bool:
        return self.state in COMMANDING

    @property
    def held(self) -> bool:
        return self.state in HELD

    def reason(self) -> str:
        return "; ".join(self.reasons)

    # -- transitions ---------------------------------------------------------------------------------------

    def start(self) -> Transition:
        """Operator start: idle/stopped -> starting (the start-up sequence runs next)."""
        return self._move("start", (IDLE, STOPPED), STARTING, ())

    def started(self) -> Transition:
        """The start-up sequence finished: starting -> running."""
        return self._move("finish start-up", (STARTING,), RUNNING, ())

    def start_failed(self, reason: str) -> Transition:
        """A start-up step failed or timed out: starting -> stopping (the exit steps restore the robot)."""
        return self._move("fail start-up", (STARTING,), STOPPING, (f"start-up failed: {reason}",))

    def hold(self, reasons: Sequence[str]) -> Transition:
        """A failure (stale input, slow model, tick exception, dead worker): running -> holding with the reasons.

        In holding the reasons are replaced by the current ones; in paused the operator's pause stays and the
        failure is added, so a resume still checks it.
        """
        reasons = tuple(reasons) or ("unspecified failure",)
        with self._lock:
            if self.state == RUNNING:
                self.trips += 1
                return self._set(HOLDING, reasons, "hold")
            if self.state == HOLDING:
                self.reasons = reasons
                return Transition(True, HOLDING, "holding: " + self.reason())
            if self.state == PAUSED:
                self.reasons = (self.reasons[0],) + tuple(r for r in reasons if r != self.reasons[0])
                return Transition(True, PAUSED, "paused: " + self.reason())
            return Transition(False, self.state, f"cannot hold while {self.state}")

    def pause(self, reason: str = "paused by operator") -> Transition:
        """Operator pause: running/holding -> paused; only ~resume leaves it (never auto-resume)."""
        return self._move("pause", (RUNNING, HOLDING), PAUSED, (reason,))

    def resume(self, problems: Sequence[str] = ()) -> Transition:
        """holding/paused -> running, refused while any input is unhealthy (problems lists them)."""
        with self._lock:
            if self.state not in HELD:
                return Transition(False, self.state, f"cannot resume while {self.state}"
                                  + ("" if self.state != RUNNING else " (already running)"))
            if problems:
                if self.state == HOLDING:
                    self.reasons = tuple(problems)
                return Transition(False, self.state, "inputs not healthy: " + "; ".join(problems))
            return self._set(RUNNING, (), "resume")

    def takeover(self, reason: str = "operator in charge (takeover)") -> Transition:
        """The operator takes the robot: running/holding/paused -> operator; the node stops commanding."""
        return self._move("take over", (RUNNING, HOLDING, PAUSED), OPERATOR, (reason,))

    def release(self, problems: Sequence[str] = ()) -> Transition:
        """The operator hands back: operator -> running, refused while any input is unhealthy (as resume)."""
        with self._lock:
            if self.state != OPERATOR:
                return Transition(False, self.state, f"cannot hand back while {self.state} (not taken over)")
            if problems:
                return Transition(False, self.state, "inputs not healthy: " + "; ".join(problems))
            return self._set(RUNNING, (), "hand back")

    def stop(self, reason: str) -> Transition:
        """Operator stop or shutdown: anything but stopping/stopped -> stopping (the exit steps run next)."""
        return self._move("stop", (IDLE, STARTING, RUNNING, HOLDING, PAUSED, OPERATOR), STOPPING, (reason,))

    def stopped(self, report: str) -> Transition:
        """The exit steps ran: stopping -> stopped, with what they did (restore verified or not) as the reason."""
        with self._lock:
            if self.state != STOPPING:
                return Transition(False, self.state, f"cannot finish stopping while {self.state}")
            return self._set(STOPPED, tuple(r for r in (self.reason(), report) if r), "stopped")

    # -- helpers -------------------------------------------------------------------------------------------

    def _move(self, action: str, allowed: tuple[str, ...], target: str, reasons: tuple[str, ...]) -> Transition:
        with self._lock:
            if self.state not in allowed:
                return Transition(False, self.state, f"cannot {action} while {self.state}")
            return self._set(target, reasons, action)

    def _set(self, target: str, reasons: tuple[str, ...], action: str) -> Transition:
        before = self.state
        self.state, self.reasons = target, reasons
        why = f" ({self.reason()})" if reasons else ""
        return Transition(True, target, f"{action}: {before} -> {target}{why}")
