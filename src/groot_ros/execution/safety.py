"""The last gate before the robot: every command passes here, whatever produced it.

Order per tick: non-finite values are replaced by the last safe value, then position limits, then the
per-tick rate limit relative to the last safe command. If the last safe command is inside the limits
the output is too; if it is outside (the robot started beyond the forearm clip), the output walks back
in at the rate limit instead of jumping. Every intervention is counted per reason and per dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from groot_ros.execution.config import SafetyConfig
from groot_ros.core.layout import Layout

REASONS = ("nonfinite", "position", "rate")
# Per-side arm order is shoulder pitch, roll, yaw, forearm pitch, hand yaw, pitch, roll (see RobotSpec).
_FOREARM_IN_SIDE = 3


@dataclass(frozen=True)
class DimLimit:
    """One action dimension's envelope and how to explain it to a person."""

    lower: float
    upper: float
    max_step: float  # per control tick; inf: no rate limit
    limit_text: str  # "forearm limit [-130, 0] deg"
    rate_text: str  # "max 1.0 rad/s"


def _fmt(lo: float, hi: float, unit: str) -> str:
    return f"[{lo:g}, {hi:g}] {unit}".rstrip()


def dimension_limits(layout: Layout, config: SafetyConfig, tick_dt: float) -> list[DimLimit]:
    """Limits per action dimension, built from the layout's channels and the robot spec."""
    robot = layout.robot
    half = len(robot.arm_joint_names) // 2
    forearm = {_FOREARM_IN_SIDE, half + _FOREARM_IN_SIDE}
    torso_fields = layout.commands["torso"].fields if "torso" in layout.commands else ()
    torso = {
        "linear.z": (robot.torso_z_limits, config.torso_max_z_rate, "torso z", "m"),
        "angular.y": (robot.torso_pitch_limits, config.torso_max_pitch_rate, "torso pitch", "rad"),
    }
    limits: list[DimLimit] = []
    for comp in layout.action:
        for index in comp.indices:
            if comp.channel == "arm":
                lo, hi = (float(v) for v in robot.arm_limits[index])
                text = "URDF limit"
                if config.use_forearm_limit and index in forearm:
                    lo, hi = max(lo, robot.forearm_limit[0]), min(hi, robot.forearm_limit[1])
                    text = "forearm limit"
                rate = config.max_joint_velocity
                limits.append(DimLimit(lo, hi, rate * tick_dt, f"{text} {_fmt(math.degrees(lo), math.degrees(hi), 'deg')}",
                                       f"max {rate:g} rad/s"))
            elif comp.channel == "claw":
                lo, hi = robot.claw_limits
                rate = config.claw_max_rate
                limits.append(DimLimit(lo, hi, math.inf if rate is None else rate * tick_dt,
                                       f"claw range {_fmt(lo, hi, '')}", f"max {rate:g}/s" if rate else "none"))
            elif comp.channel == "torso":
                name = torso_fields[index] if index < len(torso_fields) else None
                if name not in torso:
                    raise ValueError(f"torso command field {name!r} has no limits; known: {sorted(torso)}")
                (lo, hi), rate, what, unit = torso[name]
                limits.append(DimLimit(lo, hi, rate * tick_dt, f"{what} limit {_fmt(lo, hi, unit)}",
                                       f"max {rate:g} {unit}/s"))
            else:
                raise ValueError(f"action '{comp.name}': no safety limits for channel '{comp.channel}'")
    bad = [n for n, d in zip(layout.action_names, limits) if not d.lower <= d.upper]
    if bad:
        raise ValueError(f"empty position range (lower > upper) for {bad}: check the robot config")
    return limits


class SafetyEnvelope:
    """Clamps and counts; `reset(measured)` gives it the reference used before any safe command exists."""

    def __init__(self, layout: Layout, config: SafetyConfig, control_rate: float):
        self.names = layout.action_names
        self.limits = dimension_limits(layout, config, 1.0 / control_rate)
        self.lower = np.array([d.lower for d in self.limits])
        self.upper = np.array([d.upper for d in self.limits])
        self.max_step = np.array([d.max_step for d in self.limits])
        self.counts = {reason: np.zeros(len(self.names), dtype=np.int64) for reason in REASONS}
        self.commands = 0
        self._last: np.ndarray | None = None

    @property
    def last(self) -> np.ndarray | None:
        """The last command that left the envelope (what a hold commands)."""
        return None if self._last is None else self._last.copy()

    def reset(self, measured: np.ndarray) -> None:
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != self.lower.shape or not np.isfinite(measured).all():
            raise ValueError(f"safety reset needs a finite pose of shape {self.lower.shape}, got {measured!r}")
        self._last = measured.copy()

    def apply(self, command: np.ndarray) -> np.ndarray:
        if self._last is None:
            raise RuntimeError("SafetyEnvelope.reset(measured) must be called before the first command")
        cmd = np.array(command, dtype=np.float64)
        if cmd.shape != self.lower.shape:
            raise ValueError(f"command must have shape {self.lower.shape}, got {cmd.shape}")
        last = self._last
        bad = ~np.isfinite(cmd)
        if bad.any():
            cmd[bad] = last[bad]
            self.counts["nonfinite"] += bad
        clipped = np.clip(cmd, self.lower, self.upper)
        self.counts["position"] += clipped != cmd
        out = last + np.clip(clipped - last, -self.max_step, self.max_step)
        self.counts["rate"] += out != clipped
        self.commands += 1
        self._last = out
        return out.copy()

    def clamp_counts(self) -> dict[str, dict[str, int]]:
        """reason -> {dimension name: count}, only non-zero entries."""
        return {r: {self.names[i]: int(c[i]) for i in np.flatnonzero(c)} for r, c in self.counts.items()}

    def summary(self) -> str:
        """What was clamped, most frequent first, with the limit that did it."""
        lines = []
        for reason, verb in (("position", "clamped"), ("rate", "rate-limited"), ("nonfinite", "replaced non-finite")):
            c = self.counts[reason]
            for i in sorted(np.flatnonzero(c), key=lambda i: -c[i]):
                why = {"position": self.limits[i].limit_text, "rate": self.limits[i].rate_text,
                       "nonfinite": "held last safe value"}[reason]
                lines.append(f"{verb} {self.names[i]} {c[i]} times ({why})")
        return "\n".join(lines) if lines else f"no clamps in {self.commands} commands"
