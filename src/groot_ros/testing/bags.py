"""Small synthetic Kuavo bags written with rosbag and the real message classes, for the offline-tool tests.

Each episode is a few seconds of a plausible teleoperated motion: arm commands (degrees on the wire) that the
joints follow with a lag, claws that close half-way through, a torso squat, and 64x64 camera frames whose
content moves with the arms (so images carry information a policy can use). Rates and header stamps differ
per topic the way they do on the robot; /humanoid_wbc_observation and /cmd_pose have no header. The Kuavo
messages are written in one of the shipped versions (ros/kuavo_versions.py), e.g. the 2025-04 robot's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_HW = (64, 64)
STAND_Z = 0.83


@dataclass(frozen=True)
class EpisodeSpec:
    seconds: float = 3.0
    phase: float = 0.0
    drop_topics: tuple[str, ...] = ()
    camera_gap: tuple[float, float] | None = None  # (from, to) seconds without camera frames
    msg_version: str = "sdk-1.5.0"  # the Kuavo message version the bag is recorded in


def arm_command(layout, t: float, phase: float) -> np.ndarray:
    """Radians, inside the robot's URDF limits."""
    limits = layout.robot.arm_limits
    mid, half = limits.mean(axis=1), (limits[:, 1] - limits[:, 0]) / 8
    return mid + half * np.sin(2 * np.pi * 0.4 * t + phase + np.arange(14) * 0.3)


def claw_command(t: float, seconds: float) -> np.ndarray:
    return np.array([0.0, 0.0]) if t < seconds / 2 else np.array([100.0, 60.0])


def torso_command(t: float) -> np.ndarray:
    return np.array([-0.05 * min(t, 2.0) / 2.0, 0.1])


def render(layout, q: np.ndarray, t: float) -> np.ndarray:
    h, w = IMAGE_HW
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 2] = 60
    span = layout.robot.arm_limits[:, 1] - layout.robot.arm_limits[:, 0]
    x = int(np.clip((q[0] - layout.robot.arm_limits[0, 0]) / span[0], 0, 1) * (w - 16))
    y = int(np.clip((q[7] - layout.robot.arm_limits[7, 0]) / span[7], 0, 1) * (h - 16))
    img[y:y + 16, x:x + 16] = (230, 40, 40)
    img[:4, : int(w * (t % 1.0))] = 255
    return img


def write_episode(path: Path, layout, spec: EpisodeSpec = EpisodeSpec(), t0: float = 1000.0) -> Path:
    import genpy
    import rosbag
    from geometry_msgs.msg import Twist
    from sensor_msgs.msg import CompressedImage, Image, JointState

    from groot_ros.core.images import encode_jpeg, encode_rgb8
    from groot_ros.ros.kuavo_versions import message_class

    def kuavo(type_name: str):
        return message_class(spec.msg_version, type_name)()

    def stamp(sec: float) -> genpy.Time:
        return genpy.Time.from_sec(sec)

    streams, cams, cmds = layout.streams, {c.name: c for c in layout.cameras}, layout.commands
    lo, hi = layout.robot.arm_slice
    events = []  # (receive time, topic, msg)

    def add(topic: str, rate: float, make, delay: float = 0.002, gap: tuple[float, float] | None = None) -> None:
        if topic in spec.drop_topics:
            return
        for t in np.arange(0.0, spec.seconds, 1.0 / rate):
            if gap is not None and gap[0] <= t < gap[1]:
                continue
            msg = make(float(t))
            if hasattr(msg, "header"):
                msg.header.stamp = stamp(t0 + t)
            events.append((t0 + t + delay, topic, msg))

    def joints(t: float):
        q = np.zeros(layout.robot.num_joints)
        q[lo:hi] = arm_command(layout, t - 0.1, spec.phase)
        msg = kuavo("kuavo_msgs/sensorsData")
        msg.joint_data.joint_q, msg.joint_data.joint_v = q.tolist(), [0.0] * len(q)
        return msg

    def claws(t: float):
        msg = kuavo("kuavo_msgs/lejuClawState")
        msg.state, msg.data.name = [2, 2], ["left_claw", "right_claw"]
        msg.data.position = claw_command(t - 0.2, spec.seconds).tolist()
        return msg

    def torso(t: float):
        value = np.zeros(12, dtype=np.float32)
        z, pitch = torso_command(t - 0.1)
        value[8], value[10] = STAND_Z + z, pitch
        msg = kuavo("ocs2_msgs/mpc_observation")
        msg.time, msg.state.value = t, value.tolist()
        return msg

    def camera(cam):
        def make(t: float):
            img = render(layout, arm_command(layout, t - 0.1, spec.phase), t)
            if cam.msg_type == "sensor_msgs/CompressedImage":
                return CompressedImage(format="jpeg", data=encode_jpeg(img))
            return Image(**encode_rgb8(img))
        return make

    def arm_cmd(t: float):
        return JointState(name=list(layout.robot.arm_joint_names),
                          position=(arm_command(layout, t, spec.phase) * cmds["arm"].scale).tolist())

    def claw_cmd(t: float):
        msg = kuavo("kuavo_msgs/lejuClawCommand")
        msg.data.name, msg.data.position = ["left_claw", "right_claw"], claw_command(t, spec.seconds).tolist()
        msg.data.velocity, msg.data.effort = [90.0, 90.0], [1.0, 1.0]
        return msg

    def torso_cmd(t: float):
        msg = Twist()
        msg.linear.z, msg.angular.y = torso_command(t)
        return msg

    def imu(values):
        from std_msgs.msg import Float64MultiArray

        return lambda t: Float64MultiArray(data=list(values))

    add(streams["joints"].topic, 100, joints)
    for name, values in (("imu_lin_acc", (0.1, -0.2, 9.81)), ("imu_ang_vel", (0.01, 0.02, -0.03))):
        if name in layout.used_streams():
            add(streams[name].topic, 100, imu(values))
    add(streams["claws"].topic, 50, claws)
    add(streams["torso"].topic, 100, torso)
    for cam in cams.values():
        add(cam.topic, 15, camera(cam), delay=0.01, gap=spec.camera_gap)
    add(cmds["arm"].topic, 50, arm_cmd)
    add(cmds["claw"].topic, 5, claw_cmd)
    add(cmds["torso"].topic, 10, torso_cmd)
    events.sort(key=lambda e: e[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with rosbag.Bag(str(path), "w") as bag:
        for t, topic, msg in events:
            bag.write(topic, msg, t=stamp(t))
    return path


def write_bags(folder: Path, layout, count: int = 3, seconds: float = 3.0, msg_version: str = "sdk-1.5.0") -> list[Path]:
    return [write_episode(folder / f"episode_{i:02d}.bag", layout,
                          EpisodeSpec(seconds=seconds, phase=0.7 * i, msg_version=msg_version), t0=1000.0 + 100 * i)
            for i in range(count)]
