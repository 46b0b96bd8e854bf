"""The start pose of the start-up sequence from a recording: a LeRobot dataset's first action of an episode
(start_pose_from:=DATASET[:episode]) or a rosbag's first command on each of the layout's command topics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groot_ros.core.layout import Layout, NameMapError
from groot_ros.execution.motion import MotionError


def load_start_pose(source: str, layout: Layout) -> np.ndarray:
    """An action vector (robot units); channels a bag never commanded are NaN (start_target keeps them)."""
    if source.endswith(".bag"):
        return _from_bag(Path(source), layout)
    from groot_ros.tools.episodes import layout_actions, load_episode, split_source

    root, episode = split_source(source)
    return layout_actions(load_episode(root, episode), layout)[0]


def _from_bag(path: Path, layout: Layout) -> np.ndarray:
    """By name where the command names its joints (a bag may list the right arm first); by index, said in the
    error of a pose that cannot be right, only where it names none."""
    import rosbag

    if not path.is_file():
        raise MotionError(f"start pose bag {path} does not exist")
    by_topic = {spec.topic: (channel, spec) for channel, spec in layout.commands.items()}
    first: dict[str, np.ndarray] = {}
    with rosbag.Bag(str(path)) as bag:
        for topic, msg, _t in bag.read_messages(topics=list(by_topic)):
            channel, spec = by_topic[topic]
            if channel not in first:
                try:
                    first[channel] = layout.command_values(channel, msg)[0]
                except NameMapError as exc:
                    raise MotionError(f"start pose from {path}: {exc}") from exc
            if len(first) == len(by_topic):
                break
    if "arm" not in first:
        raise MotionError(f"{path} has no arm command on {layout.commands['arm'].topic}")
    channels = {ch: first.get(ch, np.full(spec.dim, np.nan)) for ch, spec in layout.commands.items()}
    return layout.action_from_channels(channels)
