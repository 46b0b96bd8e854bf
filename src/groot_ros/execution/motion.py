"""Slow moves the node makes itself, outside the policy: the start-up approach and the exit motion (no ROS).

Both are planned here as plain functions of the measured pose, so they can be tested without a robot; the node
streams them at the control rate through the same safety envelope as the policy's commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.execution.config import StartupConfig


class MotionError(ValueError):
    """A start or exit pose that cannot be used; the message says which values are wrong."""


def exit_target(layout: Layout, last: np.ndarray, open_claws: bool, home_pose_deg: Sequence[float]) -> np.ndarray:
    """The pose to move to before handing the robot back: claws open and/or arms home, the rest as it is."""
    channels = layout.channel_values(last)
    if open_claws and "claw" in channels:
        channels["claw"][:] = layout.robot.claw_limits[0]
    if len(home_pose_deg):
        home = np.radians(np.asarray(home_pose_deg, dtype=np.float64))
        if home.shape != channels["arm"].shape:
            raise MotionError(f"home_pose_deg has {home.size} values, the arms have {channels['arm'].size}")
        channels["arm"] = home
    return layout.action_from_channels(channels)


def start_target(layout: Layout, measured: np.ndarray, config: StartupConfig,
                 start_pose: np.ndarray | None = None) -> np.ndarray | None:
    """Where the start-up sequence moves to: arms and torso from `start_pose` (an action vector: a dataset's
    first action, a bag's first command) or from the config, claws open when configured, the rest as measured.
    None: nothing to move (no start pose configured)."""
    channels = layout.channel_values(np.asarray(measured, dtype=np.float64))
    moved = False
    if start_pose is not None:
        pose = np.asarray(start_pose, dtype=np.float64)
        if pose.shape != (layout.action_dim,):
            raise MotionError(f"start pose needs {layout.action_dim} values ({', '.join(layout.action_names)}), "
                              f"got {pose.shape}")
        given = layout.channel_values(pose)
        if not np.isfinite(given["arm"]).all():
            raise MotionError(f"start pose arms are not finite: {given['arm'].tolist()}")
        for channel in ("arm", "torso"):  # a channel the recording never commanded (NaN) stays as measured
            if channel in channels and np.isfinite(given[channel]).all():
                channels[channel] = given[channel]
        moved = True
    else:
        if config.arm_pose_deg is not None:
            channels["arm"] = np.radians(np.asarray(config.arm_pose_deg, dtype=np.float64))
            moved = True
        if config.torso_pose is not None and "torso" in channels:
            channels["torso"] = np.asarray(config.torso_pose, dtype=np.float64)
            moved = True
    if config.open_claws and "claw" in channels:
        channels["claw"][:] = layout.robot.claw_limits[0]
    return layout.action_from_channels(channels) if moved else None


def channel_mask(layout: Layout, channel: str) -> np.ndarray:
    """True for the action dimensions that go to one command channel (arm, claw, torso)."""
    return np.concatenate([np.full(c.dim, c.channel == channel) for c in layout.action])


@dataclass(frozen=True)
class Move:
    """A straight line in action space from `start` to `target`, slow enough for every joint."""

    start: np.ndarray
    target: np.ndarray
    duration: float

    def at(self, t: float) -> np.ndarray:
        s = 1.0 if self.duration <= 0 else min(max(t / self.duration, 0.0), 1.0)
        s = s * s * (3.0 - 2.0 * s)  # smoothstep: no velocity jump at either end
        return self.start + (self.target - self.start) * s

    def waypoints(self, dt: float) -> list[np.ndarray]:
        n = max(1, int(np.ceil(self.duration / dt)))
        return [self.at(k * dt) for k in range(1, n + 1)]


def plan_move(layout: Layout, start: np.ndarray, target: np.ndarray, min_duration_s: float,
              max_joint_velocity: float) -> Move:
    """Duration: at least min_duration_s, and long enough that no arm joint exceeds max_joint_velocity (the
    smoothstep's peak speed is 1.5x the mean)."""
    start, target = np.asarray(start, dtype=np.float64), np.asarray(target, dtype=np.float64)
    arm = channel_mask(layout, "arm")
    distance = float(np.max(np.abs(target - start)[arm])) if arm.any() else 0.0
    return Move(start, target, max(min_duration_s, 1.5 * distance / max_joint_velocity))


def pose_error(layout: Layout, measured: np.ndarray, target: np.ndarray, channel: str) -> float:
    """Largest absolute difference on one channel (rad for arms, claw units for claws)."""
    mask = channel_mask(layout, channel)
    if not mask.any():
        return 0.0
    return float(np.max(np.abs(np.asarray(measured)[mask] - np.asarray(target)[mask])))
