"""A model chunk as a trajectory in absolute time, sampled at any control instant.

The model emits rows `model_action_dt` apart; the robot wants a command every control tick. Linear
dimensions (arms, torso pose) are interpolated between rows; hold dimensions (claws) keep a row's value
until the next row, because an in-between claw position is a command the model never gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Ticks computed as n * dt can land a hair before a row time; without this slack a hold dimension would
# switch one control tick late.
_TIME_EPS = 1e-9


@dataclass(frozen=True)
class Trajectory:
    """Rows at absolute `times`; each row owns the interval up to the next, the last row one `step_dt`."""

    times: np.ndarray = field(compare=False)  # (R,) seconds, increasing
    values: np.ndarray = field(compare=False)  # (R, D)
    linear_mask: np.ndarray = field(compare=False)  # (D,) True: linear, False: zero-order hold
    step_dt: float

    @property
    def start_time(self) -> float:
        return float(self.times[0])

    @property
    def end_time(self) -> float:
        return float(self.times[-1]) + self.step_dt

    def tick_times(self, dt: float) -> np.ndarray:
        """Control instants `dt` apart from the first row to the last row, inclusive (playing a recording)."""
        span = float(self.times[-1] - self.times[0])
        return self.start_time + np.arange(int(np.floor(span / dt + 1e-9)) + 1) * dt

    def rows_before(self, t: float) -> int:
        """How many rows lie strictly in the past at time t (the rows latency compensation skips)."""
        return int(np.searchsorted(self.times, t - _TIME_EPS, side="left"))

    def sample(self, t: float | np.ndarray) -> np.ndarray:
        """Command(s) at time(s) t: (D,) for a scalar, (N, D) for an array; clamped to the first/last row."""
        ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
        n = len(self.times)
        idx = np.clip(np.searchsorted(self.times, ts + _TIME_EPS, side="right") - 1, 0, n - 1)
        nxt = np.minimum(idx + 1, n - 1)
        span = self.times[nxt] - self.times[idx]
        frac = np.where(span > 0, (ts - self.times[idx]) / np.where(span > 0, span, 1.0), 0.0)
        frac = np.clip(frac, 0.0, 1.0)[:, None]
        lo, hi = self.values[idx], self.values[nxt]
        out = np.where(self.linear_mask, lo + frac * (hi - lo), lo)
        return out[0] if np.ndim(t) == 0 else out


def chunk_trajectory(chunk: np.ndarray, row0_time: float, step_dt: float, linear_mask: np.ndarray,
                     rows: range) -> Trajectory:
    """Places the window/stride `rows` of a (T, D) chunk at row0_time + row * step_dt.

    Rows keep the times they had in the model's chunk, so a window or a stride never shifts the
    trajectory in time; a stride only drops intermediate targets.
    """
    chunk = np.asarray(chunk, dtype=np.float64)
    mask = np.asarray(linear_mask, dtype=bool)
    if chunk.ndim != 2 or chunk.shape[1] != mask.shape[0]:
        raise ValueError(f"chunk must be (rows, {mask.shape[0]}), got shape {chunk.shape}")
    if len(rows) == 0 or rows[-1] >= chunk.shape[0]:
        raise ValueError(f"chunk of {chunk.shape[0]} rows has no rows {list(rows)}")
    index = np.asarray(rows)
    return Trajectory(times=row0_time + index * step_dt, values=chunk[index], linear_mask=mask,
                      step_dt=step_dt * rows.step)
