"""The `topics` backend: the controller's own command topics, as named and scaled in config/topics/*.yaml."""

from __future__ import annotations

import numpy as np
import rospy

from groot_ros.core.layout import CommandSpec, Layout, write_field
from groot_ros.ros.backends.base import CommandBackend
from groot_ros.ros.backends.config import BackendConfig
from groot_ros.ros.messages import message_class


class ChannelPublisher:
    """One command channel -> one message on its topic, in the message's units (`scale`).

    Per-type extras the controller insists on: /kuavo_arm_traj needs exactly 14 joint names, and a claw
    command carries velocity and effort next to the position.
    """

    def __init__(self, spec: CommandSpec, layout: Layout, config: BackendConfig):
        self.spec = spec
        self._cls = message_class(spec.msg_type)
        self._names = list(layout.robot.arm_joint_names if spec.channel == "arm" else config.claw_names)
        self._config = config
        self.publisher = rospy.Publisher(spec.topic, self._cls, queue_size=10, tcp_nodelay=True)

    def message(self, values: np.ndarray):
        spec, msg = self.spec, self._cls()
        scaled = values * spec.scale
        if spec.field:
            write_field(msg, spec.field, scaled.tolist())
        for path, value in zip(spec.fields, scaled):
            write_field(msg, path, float(value))
        if spec.msg_type == "sensor_msgs/JointState":
            msg.name = self._names
        elif spec.msg_type == "kuavo_msgs/lejuClawCommand":
            msg.data.name = self._names
            msg.data.velocity = [self._config.claw_velocity] * spec.dim
            msg.data.effort = [self._config.claw_effort] * spec.dim
        if hasattr(msg, "header"):
            msg.header.stamp = rospy.Time.now()
        return msg

    def publish(self, values: np.ndarray) -> None:
        self.publisher.publish(self.message(values))


class TopicsBackend(CommandBackend):
    def _connect(self) -> None:
        used = set(self.layout.action_channels)
        self._publishers = {ch: ChannelPublisher(self.layout.commands[ch], self.layout, self.config) for ch in used}

    def _disconnect(self) -> None:
        for channel in self._publishers.values():
            channel.publisher.unregister()

    def _send(self, channel: str, values: np.ndarray) -> None:
        self._publishers[channel].publish(values)
