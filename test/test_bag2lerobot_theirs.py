"""bag2lerobot on bags recorded the users' way: /mm_kuavo_arm_traj, Orbbec raw cameras (4), IMU; their names;
and several datasets merged into one by LeRobot's own aggregation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from groot_ros.core.cameras import PREFIX, map_camera_keys
from groot_ros.core.layout import load_layout
from groot_ros.testing.bags import EpisodeSpec, write_bags, write_episode
from groot_ros.tools.bag2lerobot import ConversionError, ConvertOptions, convert, merge_datasets, with_command_topic

CAMERAS = ("cam_head", "cam_chest", "cam_left", "cam_right")
STATE_NAMES = [f"arm_joint_{i}" for i in range(1, 15)] + ["lin_acc_x", "lin_acc_y", "lin_acc_z", "ang_vel_x",
                                                          "ang_vel_y", "ang_vel_z", "left_claw_state",
                                                          "right_claw_state"]
ACTION_NAMES = [f"arm_joint_{i}" for i in range(1, 15)] + ["left_claw_position", "right_claw_position"]


@pytest.fixture(scope="module")
def strategy_layout():
    layout = load_layout("arms_claws_imu", "4_pro", "real_orbbec",
                         cameras=map_camera_keys([PREFIX + c for c in CAMERAS]))
    return with_command_topic(layout, "arm", "/mm_kuavo_arm_traj")


@pytest.fixture(scope="module")
def converted(tmp_path_factory, strategy_layout):
    folder = tmp_path_factory.mktemp("strategy_bags")
    write_bags(folder, strategy_layout, count=2, seconds=2.0)
    plain = with_command_topic(strategy_layout, "arm", "/kuavo_arm_traj")
    write_episode(folder / "episode_99_vr_arm_topic.bag", plain, EpisodeSpec(seconds=2.0))
    root = tmp_path_factory.mktemp("datasets") / "strategy"
    report = convert([folder], root, strategy_layout, ConvertOptions(task="Depalletize the box"), progress=False)
    return report


def test_their_feature_names_cameras_and_imu(converted):
    info = json.loads((converted.root / "meta" / "info.json").read_text())
    assert info["features"]["observation.state"]["names"] == STATE_NAMES
    assert info["features"]["action"]["names"] == ACTION_NAMES
    assert sorted(k for k in info["features"] if k.startswith(PREFIX)) == sorted(PREFIX + c for c in CAMERAS)
    import pandas as pd

    frame = pd.concat(pd.read_parquet(f) for f in sorted((converted.root / "data").rglob("*.parquet")))
    state = np.stack(frame["observation.state"].to_numpy())
    np.testing.assert_allclose(state[:, 14:20], [[0.1, -0.2, 9.81, 0.01, 0.02, -0.03]] * len(state), rtol=1e-6)


def test_a_bag_without_the_named_arm_topic_is_skipped_naming_it(converted):
    reasons = {o.bag.name: o.skipped for o in converted.skipped}
    assert "no messages on command:arm (/mm_kuavo_arm_traj)" in reasons["episode_99_vr_arm_topic.bag"]
    assert len(converted.written) == 2


def test_datasets_merge_through_lerobot(converted, tmp_path, strategy_layout):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    folder = tmp_path / "more_bags"
    write_bags(folder, strategy_layout, count=1, seconds=2.0)
    second = convert([folder], tmp_path / "second", strategy_layout, ConvertOptions(task="Stack the box"),
                     progress=False)
    merged = merge_datasets([converted.root, second.root], tmp_path / "merged")
    dataset = LeRobotDataset("local/merged", root=merged)
    assert dataset.meta.total_episodes == 3
    assert dataset.meta.features["observation.state"]["names"] == STATE_NAMES
    assert set(dataset.meta.tasks.index) == {"Depalletize the box", "Stack the box"}
    with pytest.raises(ConversionError, match="already exists"):
        merge_datasets([converted.root], merged)
