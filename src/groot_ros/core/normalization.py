"""Min-max (de)normalization exactly as LeRobot's GR00T pack step defines it, for whole chunks at once.

Forward (LeRobot): y = 2 (x - min) / (max - min) - 1, and y = 0 where max == min.
Inverse (ours, vectorised over any leading shape): x = (y + 1) / 2 (max - min) + min, and x = min where
max == min. LeRobot's own postprocessor keeps only the last row of a chunk, so we do not use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MinMax:
    min: np.ndarray
    max: np.ndarray

    def __post_init__(self) -> None:
        if self.min.shape != self.max.shape or self.min.ndim != 1:
            raise ValueError(f"min/max must be 1-D of equal length, got {self.min.shape} and {self.max.shape}")
        if not (np.all(np.isfinite(self.min)) and np.all(np.isfinite(self.max))):
            raise ValueError("min/max statistics contain NaN or inf")

    @property
    def dim(self) -> int:
        return int(self.min.shape[0])

    def normalize(self, x: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        """`dtype` is the arithmetic's precision: float32 is LeRobot's pack step on float32 stats, bit for bit."""
        x = np.asarray(x, dtype=dtype)
        lo, hi = self.min.astype(dtype), self.max.astype(dtype)
        denom = hi - lo
        safe = np.where(denom != 0, denom, dtype(1))
        return np.where(denom != 0, 2 * (x - lo) / safe - 1, dtype(0)).astype(dtype)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if y.shape[-1] != self.dim:
            raise ValueError(f"last dimension {y.shape[-1]} does not match the statistics' {self.dim}")
        denom = self.max - self.min
        return np.where(denom != 0, (y + 1.0) * 0.5 * denom + self.min, self.min)
