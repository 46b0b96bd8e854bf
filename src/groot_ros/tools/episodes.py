"""Recorded actions of one episode of a local LeRobot v3.0 dataset, read straight from its parquet files.

No LeRobot or torch import: the node reads a start pose from it at launch (start_pose_from:=DATASET[:episode])
and replay-episode streams a whole episode; both need only the `action` column and the dataset's fps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class EpisodeError(ValueError):
    """The dataset or episode cannot be read; the message says what is missing."""


def v30_info(root: Path, needed_by: str) -> dict:
    """A local LeRobot v3.0 dataset's meta/info.json; anything else is an EpisodeError saying what and how to
    convert it (LeRobot 0.4.x reads v3.0 only)."""
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise EpisodeError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    info = json.loads(info_path.read_text())
    version = info.get("codebase_version")
    if version != "v3.0":
        hint = f"; convert it with: python -m groot_ros convert-v21 {root}" if version == "v2.1" else ""
        raise EpisodeError(f"{root} is a LeRobot {version} dataset, {needed_by} needs v3.0{hint}")
    return info


@dataclass(frozen=True)
class Episode:
    index: int
    actions: np.ndarray  # (T, action_dim) robot units, the order of the dataset's action names
    names: tuple[str, ...]
    fps: float


def split_source(text: str) -> tuple[Path, int]:
    """"DATA" -> (DATA, 0); "DATA:3" -> (DATA, 3)."""
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit():
        return Path(head), int(tail)
    return Path(text), 0


def load_episode(root: str | Path, episode: int = 0) -> Episode:
    import pyarrow.parquet as pq

    root = Path(root)
    info = v30_info(root, "reading episodes")
    feature = info.get("features", {}).get("action")
    if feature is None:
        raise EpisodeError(f"{root} has no 'action' feature")
    names = feature.get("names") or []
    rows = []
    for path in sorted((root / "data").rglob("*.parquet")):
        table = pq.read_table(path, columns=["episode_index", "frame_index", "action"]).to_pandas()
        part = table[table["episode_index"] == episode]
        if len(part):
            rows.append(part)
    if not rows:
        raise EpisodeError(f"episode {episode} is not in {root} (it has {info.get('total_episodes', '?')} episodes)")
    import pandas as pd

    frames = pd.concat(rows).sort_values("frame_index")
    actions = np.stack([np.asarray(a, dtype=np.float64) for a in frames["action"]])
    return Episode(episode, actions, tuple(names if isinstance(names, list) else []), float(info["fps"]))


def layout_actions(episode: Episode, layout) -> np.ndarray:
    """The episode's actions in the layout's order: by name when the dataset names them (the same names in
    another order are reordered; other names are refused: a dataset recorded for another layout must not drive
    this robot), by position when it names none; the width must match either way."""
    actions = episode.actions
    if actions.shape[1] != layout.action_dim:
        raise EpisodeError(f"episode {episode.index} actions have {actions.shape[1]} values, the layout "
                           f"{layout.action_dim}")
    names = [str(n) for n in episode.names or ()]
    if not names:
        return actions
    for expected in (layout.action_feature_names, layout.action_names):
        if sorted(names) == sorted(expected):
            return actions[:, [names.index(n) for n in expected]]
    raise EpisodeError(f"episode {episode.index} action names {names} are not the layout's "
                       f"{layout.action_feature_names}")
