"""The one interface the node and the tools call: an Observation in, a de-normalized action chunk out.

Two engines implement it over the same loaded checkpoint (stock.py: LeRobot's own path; fast.py: ours), and
GrootRuntime (runtime.py) is the loaded checkpoint that predicts through one of them. Nothing here imports
torch: a caller that only needs the interface (the node's worker, a test double) stays light.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix


class ObservationError(ValueError):
    """An observation the model must not see (wrong dims, NaN, unknown camera, bad image)."""


@dataclass(frozen=True)
class PolicyInputs:
    """What a policy expects and returns: the node and the tools check their data against this."""

    state_dim: int
    action_dim: int
    camera_keys: tuple[str, ...]
    chunk_size: int


@dataclass(frozen=True)
class PredictTimings:
    """Milliseconds per stage of one call, in call order: preprocess, [backbone, action_head | model], [other: the
    stock path's glue between the model's parts], denormalize."""

    stages_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def preprocess_ms(self) -> float:
        return self.stages_ms.get("preprocess", 0.0)

    @property
    def denormalize_ms(self) -> float:
        return self.stages_ms.get("denormalize", 0.0)

    @property
    def model_ms(self) -> float:
        return self.total_ms - self.preprocess_ms - self.denormalize_ms

    @property
    def total_ms(self) -> float:
        return float(sum(self.stages_ms.values()))


@dataclass(frozen=True)
class Prediction:
    normalized: np.ndarray  # (chunk, action_dim) in the model's [-1, 1] space
    chunk: np.ndarray  # (chunk, action_dim) in robot units
    timings: PredictTimings = PredictTimings()  # how long this call took, per stage


class StageClock:
    """Time since the previous mark, per stage name, over one call. `sync` (e.g. a CUDA synchronize) runs at each
    mark, so asynchronous device work is charged to the stage that queued it: the bench's stage split."""

    def __init__(self, sync: Callable[[], None] | None = None):
        self.sync = sync
        self.ms: dict[str, float] = {}
        if sync:
            sync()
        self.last = time.perf_counter()

    def mark(self, stage: str) -> None:
        if self.sync:
            self.sync()
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1e3
        self.last = now

    def timings(self) -> PredictTimings:
        return PredictTimings(dict(self.ms))


class ChunkPolicy(ABC):
    """Predicts a whole chunk from one observation. An unseeded call draws fresh flow-matching noise (as LeRobot
    does); the same seed repeats the same chunk exactly. With a prefix (real-time chunking, core/prefix.py) the
    chunk continues the plan under way: its first `prefix.delay_steps` rows are the prefix's exactly."""

    name: str = "policy"

    @property
    @abstractmethod
    def expects(self) -> PolicyInputs:
        """State/action dims, camera keys and chunk length the checkpoint was trained with."""

    @abstractmethod
    def predict(self, obs: Observation, seed: int | None = None, prefix: ChunkPrefix | None = None) -> Prediction:
        """The chunk in both the model's normalized space and robot units, with the call's timings."""

    def predict_chunk(self, obs: Observation, seed: int | None = None,
                      prefix: ChunkPrefix | None = None) -> np.ndarray:
        """(chunk_size, action_dim) in robot units: every row de-normalized with the checkpoint's min/max."""
        return self.predict(obs, seed, prefix).chunk

    def predict_normalized(self, obs: Observation, seed: int | None = None,
                           prefix: ChunkPrefix | None = None) -> np.ndarray:
        """The model's raw chunk (chunk_size, action_dim) in [-1, 1] space."""
        return self.predict(obs, seed, prefix).normalized

    def reset(self) -> None:
        """Forgets per-run state (caches keyed on the task or shapes); the weights stay loaded."""


def check_observation(obs: Observation, state_names: list[str], camera_keys: tuple[str, ...]) -> None:
    """Raises ObservationError naming every problem: state shape and finiteness, camera keys, image format."""
    problems = []
    state = np.asarray(obs.state)
    if state.shape != (len(state_names),):
        problems.append(f"state has shape {state.shape}, the policy needs ({len(state_names)},)")
    elif not np.all(np.isfinite(state)):
        bad = [state_names[i] for i in np.flatnonzero(~np.isfinite(state))]
        problems.append(f"state has NaN/inf in {bad}")
    expected = set(camera_keys)
    unknown = sorted(set(obs.images) - expected)
    absent = sorted(expected - set(obs.images))
    if unknown:
        problems.append(f"unknown camera keys {unknown}; the checkpoint takes {sorted(expected)}")
    if absent:
        problems.append(f"missing camera images {absent}")
    for key in sorted(expected & set(obs.images)):
        img = obs.images[key]
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            problems.append(f"image '{key}' must be uint8 HxWx3, got {desc}")
    if problems:
        raise ObservationError("; ".join(problems))
