"""The users' claw latch: a claw commanded "closed" for N model steps in a row stays closed until the episode ends.

Why: a policy whose claw output hovers near the closing threshold can open the claw mid-carry and drop the box.
Our users' deployment latches each claw separately (humanoid_groot dev c497b6f, robot_envs/kuavo_depalletize_env.py:
threshold 50, 5 consecutive commands, locked at 90, reset when the episode ends). Here the same rule runs on the
control loop's time: N model steps are N x the model's step of commands at or above the threshold, so it does not
depend on the control rate. Off by default (`claw_latch:` in config/execution.yaml).
"""

from __future__ import annotations

import numpy as np

from groot_ros.execution.config import ClawLatchConfig


class ClawLatch:
    """Per claw: since when its command has been "closed"; latched once that lasts `steps` model steps. One latch
    lives for one episode (the runner makes a new one at each start), across holds and takeovers."""

    def __init__(self, config: ClawLatchConfig, claws: int, step_dt: float):
        self.config = config
        self.hold_s = (config.steps - 1) * step_dt  # the Nth closed row starts N - 1 steps after the first
        self.latched = np.zeros(claws, bool)
        self._closed_since = np.full(claws, np.nan)

    def apply(self, claw_command: np.ndarray, now: float) -> np.ndarray:
        """The claw command to send: latched claws at `closed_value`, the others as asked."""
        if not self.config.enabled:
            return claw_command
        closed = np.asarray(claw_command) >= self.config.threshold
        self._closed_since = np.where(closed, np.where(np.isnan(self._closed_since), now, self._closed_since), np.nan)
        self.latched |= closed & (now - np.nan_to_num(self._closed_since, nan=now) >= self.hold_s - 1e-9)
        return np.where(self.latched, self.config.closed_value, claw_command)
