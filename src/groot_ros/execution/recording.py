"""What the runner records of a deployment, ROS- and LeRobot-free: frames at the dataset's rate, who was in charge.

The runner takes one frame per 1/fps of node time while the policy runs or the operator has taken over (holds and
pauses are not demonstrations of the task: they are left out), hands it to a `Recorder` (tools/deployment_recorder.py
writes LeRobot episodes) and never waits for it. A frame carries a store snapshot, not an observation: decoding the
cameras is milliseconds, so the recorder builds the observation on its own thread, judged at the frame's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from groot_ros.core.observation import Observation
from groot_ros.core.store import ObservationStore


@dataclass(frozen=True)
class RecordedFrame:
    """One dataset frame: the observation at `stamp`, what was sent, what the policy wanted, who was in charge."""

    stamp: float  # node time
    observe: Callable[[], Observation | None]  # built on the recorder's thread; None: inputs unusable at `stamp`
    action: np.ndarray  # (action_dim,) the command sent (after the safety envelope), or the operator's command
    policy_action: np.ndarray  # (action_dim,) the policy's own proposal; NaN when it had none (operator in charge)
    intervention: bool
    task: str


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended, as the scene or the operator reported it (None: nobody said)."""

    success: bool | None = None
    duration_s: float | None = None
    reason: str = ""


class Recorder(Protocol):
    """What the runner calls (tools/deployment_recorder.py DeploymentRecorder); none of it may block."""

    def add(self, frame: RecordedFrame) -> bool: ...

    def save_episode(self, outcome: TrialOutcome = TrialOutcome()) -> int: ...

    def discard_episode(self) -> int: ...

    def problem(self) -> str:
        """What the recording lost so far (dropped or unusable frames, a write error), "" when nothing."""


class FrameTimer:
    """Frames at the dataset's rate from a faster loop: due once per 1/fps of the caller's clock, without drift and
    without bursts after a pause (a late call takes one frame and re-anchors)."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self._next: float | None = None

    def due(self, now: float) -> bool:
        if self._next is not None and now < self._next:
            return False
        late = self._next is None or now - self._next >= self.period
        self._next = (now if late else self._next) + self.period
        return True

    def restart(self) -> None:
        self._next = None


class RunRecording:
    """The runner's side of a recorded deployment: which ticks become frames, the episode's clock, the trial's
    outcome, and the calls into the Recorder (none of which blocks the control loop)."""

    def __init__(self, recorder: Recorder, fps: float, store: ObservationStore, task: str,
                 trial_success: Callable[[], bool | None] = lambda: None):
        self.recorder = recorder
        self.store = store
        self.task = task
        self.trial_success = trial_success  # what the scene says (the stand-in's ~task_success), None: nobody
        self.timer = FrameTimer(fps)
        self._started: float | None = None  # node time of the episode's first frame

    def tick(self, now: float, action: np.ndarray, proposal: np.ndarray | None, intervention: bool) -> bool:
        """Hands over a frame when one is due; False when the recorder had to drop it (it counts them)."""
        if not self.timer.due(now):
            return True
        samples, task, store = self.store.snapshot(), self.task, self.store
        if self._started is None:
            self._started = now
        policy_action = np.full(len(action), np.nan, np.float32) if proposal is None else np.array(proposal, np.float32)
        return self.recorder.add(RecordedFrame(now, lambda: store.observation_from(samples, now, task).observation,
                                               np.array(action, np.float32), policy_action, intervention, task))

    def end_episode(self, now: float, keep: bool, reason: str) -> str:
        """Saves (keep) or drops the episode in progress; the next frame starts a new one. The line to report."""
        duration = None if self._started is None else round(now - self._started, 3)
        self._started = None
        self.timer.restart()
        if not keep:
            return f"episode discarded ({self.recorder.discard_episode()} frames)"
        success = self.trial_success()
        frames = self.recorder.save_episode(TrialOutcome(success, duration, reason))
        if not frames:
            return "no frames recorded since the last episode: nothing saved"
        outcome = "" if success is None else (", task done" if success else ", task not done")
        return f"episode saved ({frames} frames, {duration} s{outcome})"
