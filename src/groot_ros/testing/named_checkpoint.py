"""Checkpoints named the users' way (humanoid_groot): their camera keys, their feature names, their task.

A LeRobot training run leaves train_config.json in pretrained_model/ naming its dataset; the dataset's
meta/info.json holds the per-dimension names and meta/tasks.parquet the tasks. This writes both beside a
tiny checkpoint, so tests see what a user's checkpoint directory shows the node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from groot_ros.core.cameras import PREFIX, map_camera_keys
from groot_ros.core.layout import Layout, load_layout
from groot_ros.core.observation import DEFAULT_TASK

THEIR_CAMERAS = ("cam_head", "cam_left", "cam_right")
THEIR_TASK = DEFAULT_TASK  # theirs is our default


def their_layout(layout: str, robot: str, topics: str = "sim", cameras: Sequence[str] = THEIR_CAMERAS) -> Layout:
    """The layout with the checkpoint keys observation.images.<cameras> (their names)."""
    return load_layout(layout, robot, topics, cameras=map_camera_keys([PREFIX + c for c in cameras]))


def write_training_data(pretrained_model: Path, layout: Layout, dataset_root: Path,
                        tasks: Sequence[str] = (THEIR_TASK,), repo_id: str = "kuavo/depalletize") -> Path:
    """train_config.json naming `dataset_root`, and that dataset's meta/info.json and meta/tasks.parquet."""
    import pandas as pd

    meta = dataset_root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    features = {
        "observation.state": {"dtype": "float32", "shape": [layout.state_dim], "names": layout.state_feature_names},
        "action": {"dtype": "float32", "shape": [layout.action_dim], "names": layout.action_feature_names},
    }
    (meta / "info.json").write_text(json.dumps({"codebase_version": "v3.0", "features": features}, indent=2))
    pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(list(tasks), name="task")).to_parquet(
        meta / "tasks.parquet")
    (pretrained_model / "train_config.json").write_text(json.dumps(
        {"dataset": {"repo_id": repo_id, "root": str(dataset_root)}}, indent=2))
    return dataset_root


def make_their_checkpoint(out: Path, layout: str, robot: str, cameras: Sequence[str] = THEIR_CAMERAS,
                          tasks: Sequence[str] = (THEIR_TASK,)):
    """A tiny checkpoint trained (as far as its files say) on a dataset named their way."""
    from groot_ros.policy.tiny import make_tiny_checkpoint

    lay = their_layout(layout, robot, cameras=cameras)
    ckpt = make_tiny_checkpoint(out, lay)
    write_training_data(ckpt.pretrained_model, lay, out / "dataset", tasks)
    return ckpt
