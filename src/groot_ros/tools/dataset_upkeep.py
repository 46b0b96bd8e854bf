"""Dataset upkeep: a local LeRobot v2.1 dataset -> v3.0 with LeRobot's own converter, then checked.

LeRobot 0.4.x reads v3.0 only. Its converter (lerobot.datasets.v30.convert_dataset_v21_to_v30) works in place
and keeps the original as ROOT_old; we run it without the hub and then check that what came out is what went
in: same episodes, lengths, features and tasks, identical state/action values, a loadable dataset with stats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class UpkeepError(ValueError):
    """The dataset cannot be converted, or the converted one does not match the original."""


@dataclass(frozen=True)
class ConversionCheck:
    root: Path
    old_root: Path
    episodes: int
    frames: int
    compared: tuple[str, ...]  # numeric features compared value by value

    def summary(self) -> str:
        return (f"converted {self.root} to v3.0: {self.episodes} episodes, {self.frames} frames; "
                f"checked lengths, features, tasks and values of {', '.join(self.compared)}; "
                f"the v2.1 original is kept in {self.old_root}")


def _info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise UpkeepError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    return json.loads(path.read_text())


def _old_columns(old_root: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """The v2.1 per-episode parquet files, concatenated in episode order."""
    import pandas as pd

    files = sorted((old_root / "data").glob("*/*.parquet"))
    frame = pd.concat([pd.read_parquet(f, columns=keys + ["episode_index", "frame_index"]) for f in files],
                      ignore_index=True).sort_values(["episode_index", "frame_index"], kind="stable")
    return {k: np.stack(frame[k].to_numpy()) for k in keys}


def convert_v21(root: str | Path) -> ConversionCheck:
    """Converts ROOT in place (the original moves to ROOT_old) and checks the result."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.v30.convert_dataset_v21_to_v30 import convert_dataset

    root = Path(root).resolve()
    before = _info(root)
    version = before.get("codebase_version")
    if version != "v2.1":
        raise UpkeepError(f"{root} is a {version} dataset; convert-v21 converts v2.1 datasets"
                          + (" (this one is already v3.0)" if version == "v3.0" else ""))
    old_root = root.with_name(root.name + "_old")
    if old_root.exists():
        raise UpkeepError(f"{old_root} exists (from an earlier conversion?): move it away first; "
                          "LeRobot's converter would restore it over the dataset")
    old_episodes = [json.loads(line) for line in (root / "meta" / "episodes.jsonl").read_text().splitlines() if line]
    convert_dataset(repo_id=root.name, root=str(root.parent), push_to_hub=False)

    problems = []
    dataset = LeRobotDataset(f"local/{root.name}", root=root)
    meta = dataset.meta
    if meta.info.get("codebase_version") != "v3.0":
        problems.append(f"version after conversion is {meta.info.get('codebase_version')}")
    if (meta.total_episodes, meta.total_frames) != (before["total_episodes"], before["total_frames"]):
        problems.append(f"episodes/frames {meta.total_episodes}/{meta.total_frames}, "
                        f"v2.1 had {before['total_episodes']}/{before['total_frames']}")
    if sorted(meta.features) != sorted(before["features"]):
        problems.append(f"features {sorted(meta.features)} differ from v2.1 {sorted(before['features'])}")
    lengths = {int(e["episode_index"]): int(e["length"]) for e in old_episodes}
    for ep in range(meta.total_episodes):
        row = meta.episodes[ep]
        n = int(row["dataset_to_index"]) - int(row["dataset_from_index"])
        if lengths.get(ep) != n:
            problems.append(f"episode {ep} has {n} frames, v2.1 had {lengths.get(ep)}")
        if sorted(row["tasks"]) != sorted(next(e for e in old_episodes if e["episode_index"] == ep)["tasks"]):
            problems.append(f"episode {ep} tasks {row['tasks']} differ from v2.1")
    numeric = [k for k, f in before["features"].items()
               if f["dtype"] in ("float32", "float64") and k not in ("timestamp",)]
    old = _old_columns(old_root, numeric)
    new = dataset.hf_dataset.select_columns(numeric)[:]
    for key in numeric:
        values = np.stack([np.asarray(v) for v in new[key]])
        if values.shape != old[key].shape or not np.array_equal(values, old[key].astype(values.dtype)):
            problems.append(f"{key} values differ after conversion")
    if meta.stats is None or not all(k in meta.stats for k in numeric):
        problems.append("meta/stats.json lacks statistics for " + ", ".join(numeric))
    for index in (0, len(dataset) - 1):  # every column of the first and last frame decodes
        dataset[index]
    if problems:
        raise UpkeepError(f"converted dataset {root} does not match its v2.1 original ({old_root}):\n  - "
                          + "\n  - ".join(problems))
    return ConversionCheck(root=root, old_root=old_root, episodes=meta.total_episodes, frames=meta.total_frames,
                           compared=tuple(numeric))
