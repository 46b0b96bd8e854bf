"""The users' offline score, computed our way: what humanoid_groot's scripts/eval_on_dataset.py reports.

Our users compare checkpoints with the numbers of that script (branch main of their fork), so eval-dataset can
print them beside its own (`--metric humanoid_groot`). What their script does, and we repeat here through the
node's runtime:
- it infers at every frame t and keeps only the LAST row of the chunk (row 15, meant for t + 15), which it
  compares with the recorded action at frame t;
- it normalizes the state and de-normalizes the chunk with the statistics of the dataset it evaluates (its
  meta/stats.json), not the checkpoint's; our runtime normalizes with the checkpoint's, so the state is restated
  (raw -> the dataset's normalized value -> the raw value that gives it under the checkpoint's statistics) and
  the chunk mapped back the same way. Min-max maps are linear and nothing clips, so this is exact except on
  dimensions that are constant in one set of statistics and not in the other;
- it passes no task: LeRobot's GR00T preprocessor then uses "Perform the task.";
- `--state-zero` zeroes the raw state (it reaches the model as the dataset's normalized value of 0, not as 0);
  `--image-zero` feeds black images, as ours.

Row 15 against frame t measures how far the demonstration moves in 1.5 s as much as the model's error: a
perfect predictor (the dataset's own action 15 frames ahead, the last one held past the episode's end) scores
that motion, not zero. `perfect` is computed beside the model's so the floor is always in view; why the score
cannot rank models is in docs/offline_tools.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from groot_ros.core.normalization import MinMax
from groot_ros.core.observation import Observation
from groot_ros.tools.eval_units import range_mae, to_uint8_hwc

PERFECT = "perfect"


@dataclass(frozen=True)
class TheirScore:
    """One variant's score on their metric: per-dimension MAE and MSE in robot units, and our range unit."""

    variant: str
    frames: int
    mae: np.ndarray  # (action_dim,)
    mse: np.ndarray  # (action_dim,)
    range_mae: float | None  # mean over dims of MAE / the checkpoint's action span: eval-dataset's unit

    def as_dict(self, names: Sequence[str]) -> dict:
        """Their script's 'Overall' is the mean over dimensions of the per-dimension means."""
        return {"frames": self.frames, "mae": float(self.mae.mean()), "mse": float(self.mse.mean()),
                "range_mae": self.range_mae,
                "dimensions": {n: {"mae": float(a), "mse": float(s)} for n, a, s in zip(names, self.mae, self.mse)}}


def dataset_minmax(stats: Mapping[str, Mapping[str, Any]], key: str) -> MinMax:
    return MinMax(*(np.asarray(stats[key][s], np.float64).reshape(-1) for s in ("min", "max")))


def score(variant: str, predicted: np.ndarray, truth: np.ndarray, span: np.ndarray) -> TheirScore:
    err = predicted - truth
    return TheirScore(variant, len(truth), np.abs(err).mean(axis=0), (err ** 2).mean(axis=0), range_mae(err, span))


def last_row_rollout(runtime: Any, dataset: Any, start: int, stop: int, variant: str, seed: int,
                     progress: Any) -> np.ndarray:
    """(stop - start, action_dim): at every frame, the last row of the chunk as their script de-normalizes it."""
    state_ds = dataset_minmax(dataset.meta.stats, "observation.state")
    action_ds = dataset_minmax(dataset.meta.stats, "action")
    ck = runtime.stats
    rows = []
    for t in range(start, stop):
        item = dataset[t]
        raw = np.asarray(item["observation.state"], dtype=np.float64)
        if variant == "state-zero":
            raw = np.zeros_like(raw)
        images = {k: to_uint8_hwc(item[k]) for k in runtime.info.camera_keys}
        if variant == "image-zero":
            images = {k: np.zeros_like(v) for k, v in images.items()}
        fed = ck.state.denormalize(state_ds.normalize(raw))  # what the checkpoint's statistics turn into theirs
        chunk = runtime.predict_chunk(Observation(state=fed, images=images, task="", stamp=float(item["timestamp"])),
                                      seed=seed + t)
        rows.append(action_ds.denormalize(ck.action.normalize(chunk[-1])))
        progress.update(1)
    return np.stack(rows)


def perfect_rows(truth: np.ndarray, chunk_size: int) -> np.ndarray:
    """What a perfect predictor's last row is at each frame: the recorded action chunk_size - 1 frames ahead."""
    ahead = np.minimum(np.arange(len(truth)) + chunk_size - 1, len(truth) - 1)
    return truth[ahead]


def their_table(scores: Mapping[str, Mapping], chunk_size: int) -> str:
    """Their numbers beside ours, with the perfect predictor's floor."""
    lines = [f"humanoid_groot's eval_on_dataset.py score (row {chunk_size - 1} of the chunk at every frame vs the "
             "action at that frame; the dataset's own statistics; no task):",
             f"  {'variant':<12}{'MAE overall':>14}{'MSE overall':>14}{'% range':>10}"]
    for name, s in scores.items():
        pct = "-" if s["range_mae"] is None else f"{100 * s['range_mae']:.1f}"
        note = (f"   <- a perfect predictor (the dataset's own actions {chunk_size - 1} frames ahead): this score's "
                "floor" if name == PERFECT else "")
        lines.append(f"  {name:<12}{s['mae']:>14.5f}{s['mse']:>14.5f}{pct:>10}{note}")
    return "\n".join(lines)
