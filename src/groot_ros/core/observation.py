"""The plain-data observation the runtime consumes: no ROS types, so tests and tools can build one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

# The instruction when neither the user nor the checkpoint's training data names one: the users' own
# (humanoid_groot's eval scripts default to it), so a demo dataset and theirs carry the same task.
DEFAULT_TASK = "Depalletize the box"


@dataclass(frozen=True)
class Observation:
    """state: (state_dim,) in robot units; images: checkpoint key -> uint8 RGB HxWx3; stamp: seconds."""

    state: np.ndarray
    images: Mapping[str, np.ndarray]
    task: str
    stamp: float = 0.0
    meta: Mapping[str, object] = field(default_factory=dict)
