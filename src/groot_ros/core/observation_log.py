"""What the model saw and answered, one .npz per chunk: for checking a node offline against the runtime.

Off by default (~observation_log_dir). Each file holds the state, every camera image, the task, the
observation time, the seed, the plan under way the chunk continued (blend rtc's prefix, when there was one) and
the de-normalized chunk the node published with that sequence number: everything the runtime needs to give the
same chunk again.
A file is written under a temporary name and renamed when complete, so a full disk or a crash mid-write
leaves no truncated .npz behind (the node drops logging on the first error: execution/runner.py).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix

_IMAGE_PREFIX = "image:"
PARTIAL = ".chunk.npz.partial"  # the file being written (one writer: the node's inference worker)


class ObservationLog:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, sequence: int, obs: Observation, chunk: np.ndarray, seed: int | None,
              prefix: ChunkPrefix | None = None) -> Path:
        """seed None (fresh noise) is stored as -1."""
        path = self.directory / f"chunk_{sequence:05d}.npz"
        partial = self.directory / PARTIAL
        arrays = {_IMAGE_PREFIX + k: v for k, v in obs.images.items()}
        if prefix is not None:
            arrays.update(prefix_actions=prefix.actions, prefix_delay_steps=np.array(prefix.delay_steps))
        try:
            with open(partial, "wb") as f:
                np.savez_compressed(f, state=obs.state, task=np.array(obs.task), stamp=np.array(obs.stamp),
                                    seed=np.array(-1 if seed is None else seed), chunk=chunk, **arrays)
            os.replace(partial, path)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        return path


@dataclass(frozen=True)
class LogEntry:
    """One logged chunk: `policy.predict_chunk(obs, seed=seed, prefix=prefix)` gives `chunk` again."""

    obs: Observation
    chunk: np.ndarray
    seed: int  # -1: fresh noise, not reproducible
    prefix: ChunkPrefix | None


def read_entry(path: str | Path) -> LogEntry:
    with np.load(path) as data:
        images = {k[len(_IMAGE_PREFIX):]: data[k] for k in data.files if k.startswith(_IMAGE_PREFIX)}
        obs = Observation(state=data["state"], images=images, task=str(data["task"]), stamp=float(data["stamp"]))
        prefix = (ChunkPrefix(data["prefix_actions"], int(data["prefix_delay_steps"]))
                  if "prefix_actions" in data.files else None)
        return LogEntry(obs, data["chunk"], int(data["seed"]), prefix)
