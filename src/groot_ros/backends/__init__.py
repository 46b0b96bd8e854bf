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
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import rospy
import yaml

from groot_ros.layout import Layout
from groot_ros.paths import config_dir


class BackendError(RuntimeError):
    """The backend cannot command the robot; the message says what to fix."""


@dataclass(frozen=True)
class ArmModeConfig:
    set_service: str
    get_service: str
    external: int
    restore_if_unknown: int
    direct_to_wbc: bool
    direct_to_wbc_service: str
    service_timeout: float


@dataclass(frozen=True)
class BackendConfig:
    claw_names: tuple[str, ...]
    claw_velocity: float
    claw_effort: float
    arm_mode: ArmModeConfig
    sdk_claw_deadband: float
    sdk_required_node: str


def load_backend_config(path: str | Path | None = None, **arm_mode_overrides) -> BackendConfig:
    """config/backends.yaml; arm_mode_overrides (e.g. direct_to_wbc=True) come from launch parameters."""
    with open(path or config_dir() / "backends.yaml") as f:
        data = yaml.safe_load(f)
    arm = dict(data["arm_mode"], **arm_mode_overrides)
    return BackendConfig(
        claw_names=tuple(data["claw"]["names"]),
        claw_velocity=float(data["claw"]["velocity"]),
        claw_effort=float(data["claw"]["effort"]),
        arm_mode=ArmModeConfig(
            set_service=arm["set_service"], get_service=arm["get_service"], external=int(arm["external"]),
            restore_if_unknown=int(arm["restore_if_unknown"]), direct_to_wbc=bool(arm["direct_to_wbc"]),
            direct_to_wbc_service=arm["direct_to_wbc_service"], service_timeout=float(arm["service_timeout"]),
        ),
        sdk_claw_deadband=float(data["sdk"]["claw_deadband"]),
        sdk_required_node=str(data["sdk"]["required_node"]),
    )


class CommandBackend(ABC):
    def __init__(self, layout: Layout, config: BackendConfig):
        from groot_ros.backends.arm_mode import ArmModeSwitch

        self.layout = layout
        self.config = config
        self.arm_mode = ArmModeSwitch(config.arm_mode)
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


def make_backend(kind: str, layout: Layout, config: BackendConfig | None = None) -> CommandBackend:
    config = config or load_backend_config()
    if kind == "topics":
        from groot_ros.backends.topics import TopicsBackend

        return TopicsBackend(layout, config)
    if kind == "sdk":
        from groot_ros.backends.sdk import SdkBackend

        return SdkBackend(layout, config)
    raise ValueError(f"unknown backend '{kind}': expected 'topics' or 'sdk'")
