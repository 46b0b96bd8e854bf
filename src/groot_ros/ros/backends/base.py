"""Command backends: one interface from channel values in robot units to the Kuavo controller.

    backend = make_backend("topics", layout)      # or "sdk"
    backend.start()                                # arm mode -> external control (+ direct-to-WBC if configured)
    backend.send(layout.channel_values(action))    # {"arm": (14,) rad, "claw": (2,) 0..100, "torso": (2,) m, rad}
    backend.shutdown()                             # previous arm mode back, direct-to-WBC off; idempotent

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
from groot_ros.ros.backends.arm_mode import ArmModeSwitch
from groot_ros.ros.backends.config import BackendConfig, BackendError


class CommandBackend(ABC):
    def __init__(self, layout: Layout, config: BackendConfig):
        self.layout = layout
        self.config = config
        self.arm_mode = ArmModeSwitch(config.arm_mode, layout.robot.services)
        self._active = False

    def start(self) -> None:
        self._connect()
        self.arm_mode.engage()
        self._active = True

    def send(self, channels: Mapping[str, np.ndarray]) -> None:
        if not self._active:
            raise BackendError("send() outside start()..shutdown(): the arms are not in external control")
        for channel, values in channels.items():
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

    def shutdown(self) -> None:
        self._active = False
        self.arm_mode.restore()

    @abstractmethod
    def _connect(self) -> None:
        """Opens publishers / the SDK; raises BackendError when the robot side is not there."""

    @abstractmethod
    def _send(self, channel: str, values: np.ndarray) -> None:
        """One channel's finite values (robot units, shape checked)."""
