"""Backend settings from config/backends.yaml: plain YAML and dataclasses, readable without rospy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from groot_ros.core.paths import config_dir


class BackendError(RuntimeError):
    """The backend cannot command the robot; the message says what to fix."""


@dataclass(frozen=True)
class ArmModeConfig:
    """The handshake's settings; which services it calls is the robot's (core.layout.RobotServices)."""

    external: int
    restore_if_unknown: int
    direct_to_wbc: bool  # direct-to-WBC on the biped, quick arm mode on the wheel-arm robot
    service_timeout: float
    switch_timeout: float = 3.0  # s: read the mode back until it changed (Kuavo: up to 2 s)


@dataclass(frozen=True)
class BackendConfig:
    claw_names: tuple[str, ...]
    claw_velocity: float
    claw_effort: float
    head_topic: str
    arm_mode: ArmModeConfig
    sdk_claw_deadband: float
    sdk_claw_resend_s: float
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
        head_topic=str((data.get("head") or {}).get("topic", "/robot_head_motion_data")),
        arm_mode=ArmModeConfig(
            external=int(arm["external"]), restore_if_unknown=int(arm["restore_if_unknown"]),
            direct_to_wbc=bool(arm["direct_to_wbc"]), service_timeout=float(arm["service_timeout"]),
            switch_timeout=float(arm.get("switch_timeout", 3.0)),
        ),
        sdk_claw_deadband=float(data["sdk"]["claw_deadband"]),
        sdk_claw_resend_s=float(data["sdk"].get("claw_resend_s", 0.15)),
        sdk_required_node=str(data["sdk"]["required_node"]),
    )
