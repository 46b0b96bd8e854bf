"""Synthetic observations for tests, benchmarks and `predict`: plausible state, random camera frames."""

from __future__ import annotations

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.core.observation import DEFAULT_TASK, Observation
from groot_ros.testing.tiny_checkpoint import default_stats


def synthetic_observation(layout: Layout, seed: int = 0, task: str = DEFAULT_TASK):
    """A plausible observation: state at the middle of the layout's ranges, random 480x640 camera images."""
    rng = np.random.default_rng(seed)
    stats = default_stats(layout)["observation.state"]
    state = (stats["min"] + stats["max"]) / 2.0
    images = {k: rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for k in layout.camera_keys}
    return Observation(state=state.astype(np.float64), images=images, task=task)
