"""Command backends: one interface from channel values in robot units to the Kuavo controller.

    backend = make_backend("topics", layout)      # or "sdk"
    backend.start()                                # arm mode -> external control, read back
    backend.send(layout.channel_values(action))    # {"arm": (14,) rad, "claw": (2,) 0..100, "torso": (2,) m, rad}
    backend.arm_mode.set_direct_to_wbc(True)       # only after the measured pose was sent as the arm target
    report = backend.shutdown()                    # direct-to-WBC off, previous arm mode back, read back; idempotent

Limits are the caller's job (the policy node's safety layer); a backend only refuses non-finite values
(that channel holds its last command) and wrong shapes. `rospy.on_shutdown(backend.shutdown)` is safe:
rospy runs client shutdown hooks before it stops service calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Mapping

import numpy as np
import rospy

from groot_ros.core.layout import Layout
from groot_ros.ros.backends.arm_mode import ArmModeSwitch, RestoreReport
from groot_ros.ros.backends.config import BackendConfig, BackendError
from groot_ros.ros.messages import message_class


class CommandBackend(ABC):
    def __init__(self, layout: Layout, config: BackendConfig):
        self.layout = layout
        self.config = config
        self.arm_mode = ArmModeSwitch(config.arm_mode, layout.robot.services)
        self._connected = False
        self._head = None

    def start(self) -> None:
        self.connect()
        self.arm_mode.engage()

    def connect(self) -> None:
        """Publishers / the SDK, no mode change: claws and head can be commanded, arms not yet."""
        if not self._connected:
            self._connect()
            self._head_cls = message_class("kuavo_msgs/robotHeadMotionData")
            self._head = rospy.Publisher(self.config.head_topic, self._head_cls, queue_size=2)
            self._connected = True

    def disconnect(self) -> None:
        """Unregisters the publishers, arm mode untouched: another node may command the robot now (the policy node
        refuses to start while anyone else publishes on its command topics). connect()/start() open them again."""
        if self._connected:
            self._disconnect()
            self._head.unregister()
            self._connected = False

    def _disconnect(self) -> None:
        """The backend's own publishers (the SDK has none of ours)."""

    def send_head(self, yaw_deg: float, pitch_deg: float) -> None:
        self._head.publish(self._head_cls(joint_data=[float(yaw_deg), float(pitch_deg)]))

    def send(self, channels: Mapping[str, np.ndarray]) -> None:
        """Arms only in external control (after start()/engage()); claws and torso once connected."""
        if not self._connected:
            raise BackendError("send() before connect()/start(): no publishers")
        for channel, values in channels.items():
            if channel == "arm" and not self.arm_mode.engaged:
                continue  # Kuavo ignores arm commands outside external control; never switch it implicitly
            spec = self.layout.commands.get(channel)
            if spec is None:
                raise ValueError(f"unknown command channel '{channel}'; layout '{self.layout.name}' has {sorted(self.layout.commands)}")
            v = np.asarray(values, dtype=np.float64).ravel()
            if v.shape != (spec.dim,):
                raise ValueError(f"channel '{channel}' needs {spec.dim} values, got {v.shape[0]}")
            if not np.all(np.isfinite(v)):
                rospy.logerr_throttle(1.0, f"{channel}: non-finite command {v.tolist()} not sent; holding the last one")
                continue
            self._send(channel, v)

    def shutdown(self) -> RestoreReport:
        return self.arm_mode.restore()

    @property
    def direct_to_wbc_wanted(self) -> bool:
        return self.config.arm_mode.direct_to_wbc

    @abstractmethod
    def _connect(self) -> None:
        """Opens publishers / the SDK; raises BackendError when the robot side is not there."""

    @abstractmethod
    def _send(self, channel: str, values: np.ndarray) -> None:
        """One channel's finite values (robot units, shape checked)."""
