"""What real-time chunking conditions a new chunk on, as plain data: the execution core builds it, a policy (local
or behind the policy server) consumes it, so neither side has to know the other's types."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkPrefix:
    """The rows of the plan under way that will still run once the new chunk starts, re-timed to the new
    observation's stamp and resampled to the model's step: row k is the planned action at obs.stamp + k * step, in
    robot units (the policy normalizes them exactly as it normalizes actions). The first `delay_steps` rows run
    before the new chunk can take over (the expected inference delay), so the policy keeps them; later rows guide."""

    actions: np.ndarray  # (rows, action_dim) float32, robot units
    delay_steps: int

    def __post_init__(self) -> None:
        if self.actions.ndim != 2:
            raise ValueError(f"prefix actions must be (rows, action_dim), got shape {self.actions.shape}")
        if not 0 <= self.delay_steps <= self.actions.shape[0]:
            raise ValueError(f"prefix delay_steps {self.delay_steps} outside 0..{self.actions.shape[0]} rows")
