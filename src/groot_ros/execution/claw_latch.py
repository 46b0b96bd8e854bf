"""The users' claw latch: a claw commanded "closed" for N model steps in a row stays closed until the episode ends.

Why: a policy whose claw output hovers near the closing threshold can open the claw mid-carry and drop the box.
Our users' deployment latches each claw separately (humanoid_groot dev c497b6f, robot_envs/kuavo_depalletize_env.py:
threshold 50, 5 consecutive commands, locked at 90, reset when the episode ends); this is the same rule, counted in
model steps (the rows their loop sends), so it does not depend on our control rate. Off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClawLatchConfig:
    """See config/execution.yaml `claw_latch:`."""

    enabled: bool = False
    threshold: float = 50.0  # claw units (0..100): a command at or above this counts as "closed"
    steps: int = 5  # consecutive model steps at or above the threshold that latch the claw
    closed_value: float = 90.0  # what a latched claw is commanded

    def problems(self) -> list[str]:
        out = []
        if not 0.0 <= self.threshold <= 100.0:
            out.append(f"claw_latch.threshold must be within 0..100 claw units, got {self.threshold!r}")
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            out.append(f"claw_latch.steps must be an integer >= 1, got {self.steps!r}")
        if not 0.0 <= self.closed_value <= 100.0:
            out.append(f"claw_latch.closed_value must be within 0..100 claw units, got {self.closed_value!r}")
        return out


class ClawLatch:
    """Per claw: counts model steps whose command is "closed"; at `steps` in a row the claw latches. `apply` is
    called on every control tick with the model-step index the tick's command comes from, so a step is counted once
    however many control ticks it spans."""

    def __init__(self, config: ClawLatchConfig, claws: int):
        self.config = config
        self.latched = np.zeros(claws, bool)
        self._count = np.zeros(claws, int)
        self._last_step: int | None = None

    def apply(self, claw_command: np.ndarray, step: int) -> np.ndarray:
        """The command to send: latched claws at `closed_value`, the others as the policy asked."""
        if not self.config.enabled:
            return claw_command
        if step != self._last_step:
            self._last_step = step
            closed = np.asarray(claw_command) >= self.config.threshold
            self._count = np.where(closed, self._count + 1, 0)
            self.latched |= self._count >= self.config.steps
        return np.where(self.latched, self.config.closed_value, claw_command)

    def release(self) -> list[int]:
        """Episode end (stop, reset): every claw free again; returns which were latched, for the log."""
        was = [int(i) for i in np.flatnonzero(self.latched)]
        self.latched[:] = False
        self._count[:] = 0
        self._last_step = None
        return was
