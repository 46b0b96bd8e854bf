"""Joint-named messages are read by name (issue 23): bag2lerobot, start poses from bags and datasets, the live store.

A message that names its values is mapped by name (any order), one that names them with a set we do not know is
refused, and only a message without names is read by index (bag2lerobot says so in its log)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from groot_ros.core.layout import NameMapError
from groot_ros.testing.bags import EpisodeSpec, write_episode

FPS = 10
RIGHT_FIRST = list(range(7, 14)) + list(range(7))


def _rewrite_arm(src: Path, dst: Path, topic: str, names=None, order=RIGHT_FIRST) -> Path:
    """The same bag with every arm command's names and positions listed in `order` (names: replace them)."""
    import rosbag

    with rosbag.Bag(str(src)) as bag_in, rosbag.Bag(str(dst), "w") as bag_out:
        for t, msg, stamp in bag_in.read_messages():
            if t == topic:
                msg.name = list(names) if names is not None else [msg.name[i] for i in order]
                msg.position = [msg.position[i] for i in order]
            bag_out.write(t, msg, t=stamp)
    return dst


@pytest.fixture(scope="module")
def bags(tmp_path_factory, depalletize_layout):
    folder = tmp_path_factory.mktemp("named_bags")
    topic = depalletize_layout.commands["arm"].topic
    plain = write_episode(folder / "plain" / "ep.bag", depalletize_layout, EpisodeSpec(seconds=2.0))
    return {
        "plain": plain,
        "right_first": _rewrite_arm(plain, folder / "right_first.bag", topic),
        "unknown": _rewrite_arm(plain, folder / "unknown.bag", topic, names=[f"j{i}" for i in range(14)]),
        "unnamed": _rewrite_arm(plain, folder / "unnamed.bag", topic, names=[]),
    }


def _convert(bag: Path, out: Path, layout):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.tools.bag2lerobot import ConvertOptions, convert

    report = convert([bag], out, layout, ConvertOptions(task="t", fps=FPS), progress=False)
    ds = LeRobotDataset(report.repo_id, root=report.root)
    return np.stack([ds[i]["action"].numpy() for i in range(len(ds))])


def test_bag2lerobot_maps_arm_commands_by_name(bags, depalletize_layout, tmp_path, caplog):
    """Right arm first on the wire: Left_arm must still get the left arm's targets (it got the right arm's,
    off by up to 2.3 rad, when names were ignored)."""
    from groot_ros.tools.bag2lerobot import ConversionError

    plain = _convert(bags["plain"], tmp_path / "plain", depalletize_layout)
    swapped = _convert(bags["right_first"], tmp_path / "right_first", depalletize_layout)
    np.testing.assert_allclose(swapped, plain, atol=1e-6)
    assert np.abs(plain[:, :7] - plain[:, 7:14]).max() > 0.1  # the test would see a swap
    with pytest.raises(ConversionError, match=r"names \['j0', .* are no known set"):
        _convert(bags["unknown"], tmp_path / "unknown", depalletize_layout)
    with caplog.at_level(logging.WARNING):
        unnamed = _convert(bags["unnamed"], tmp_path / "unnamed", depalletize_layout)
    assert "arm command on /kuavo_arm_traj names no joints: read by index" in caplog.text
    np.testing.assert_allclose(unnamed[:, 7:14], plain[:, :7], atol=1e-6)  # by index: what the wire said


def test_start_pose_from_a_bag_maps_by_name(bags, depalletize_layout):
    from groot_ros.execution.motion import MotionError
    from groot_ros.ros.start_pose import load_start_pose

    plain = load_start_pose(str(bags["plain"]), depalletize_layout)
    np.testing.assert_allclose(load_start_pose(str(bags["right_first"]), depalletize_layout), plain, atol=1e-9)
    with pytest.raises(MotionError, match="are no known set"):
        load_start_pose(str(bags["unknown"]), depalletize_layout)


def test_start_pose_from_a_dataset_maps_action_names(depalletize_layout):
    from groot_ros.tools.episodes import Episode, EpisodeError, layout_actions

    names = list(depalletize_layout.action_feature_names)
    actions = np.arange(2 * len(names), dtype=float).reshape(2, -1)
    order = RIGHT_FIRST + list(range(14, len(names)))
    episode = Episode(index=0, actions=actions[:, order], names=[names[i] for i in order], fps=10.0)
    np.testing.assert_array_equal(layout_actions(episode, depalletize_layout), actions)
    with pytest.raises(EpisodeError, match="not the layout's"):
        layout_actions(Episode(index=0, actions=actions, names=["x"] * len(names), fps=10.0),
                       depalletize_layout)


def test_the_live_store_reads_named_claw_states_by_name_and_names_the_stream_of_a_short_array(depalletize_layout):
    from groot_ros.bench.node_path import camera_message, stream_messages
    from groot_ros.core.store import ObservationStore

    layout = depalletize_layout
    store = ObservationStore(layout)
    msgs = stream_messages(layout, 100.0, np.random.default_rng(0))
    for name, msg in msgs.items():
        store.update(name, msg, 100.0)
    for cam in layout.cameras:
        store.update(cam.name, camera_message(np.zeros((48, 64, 3), np.uint8), 100.0), 100.0)
    claws = SimpleNamespace(header=msgs["claws"].header,
                            data=SimpleNamespace(name=["right_claw", "left_claw"], position=[80.0, 10.0]))
    store.update("claws", claws, 100.0)
    obs = store.build_observation(100.0, "t")
    assert obs.ok, obs.summary()
    np.testing.assert_array_equal(obs.observation.state[14:16], [10.0, 80.0])
    claws.data.name = ["a", "b"]
    obs = store.build_observation(100.0, "t")
    assert not obs.ok and "claws (/leju_claw_state): field" in obs.summary() and "no known set" in obs.summary()
    claws.data.name = ["right_claw", "left_claw"]
    torso = msgs["torso"]
    torso.state.value = [0.0] * 5
    store.update("torso", torso, 100.0)
    pose, why = store.measured_action()
    assert pose is None and why.startswith("sensor message malformed: torso (/humanoid_wbc_observation)"), why
    assert "joints" not in why
    with pytest.raises(NameMapError):
        layout.command_values("claw", SimpleNamespace(data=SimpleNamespace(name=["l", "r"], position=[0, 0])))
