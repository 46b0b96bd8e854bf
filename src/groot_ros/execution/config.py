"""Settings of the execution core, loadable from config/execution.yaml or ROS params.

Every config is a frozen dataclass checked when built, so a bad value fails at start-up with one message
listing every problem, never mid-run on the robot.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from groot_ros.core.paths import config_dir

MODES = ("async", "sync")
BLENDS = ("none", "crossfade", "lowpass", "rtc")

C = TypeVar("C")


class ExecutionConfigError(ValueError):
    """An execution setting that cannot work; the message names the key and the accepted values."""


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        raise ExecutionConfigError(f"invalid {what} settings:\n  - " + "\n  - ".join(problems))


def from_dict(cls: type[C], data: Mapping[str, Any] | None) -> C:
    """Builds a config from a mapping (YAML section, ROS param dict); unknown keys are errors, not ignored,
    so a typo cannot silently leave a safety limit at its default."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ExecutionConfigError(f"{cls.__name__}: unknown keys {unknown}; known: {sorted(fields)}")
    return cls(**data)


def _positive(problems: list[str], name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        problems.append(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {value!r}")


def _integer(problems: list[str], name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        problems.append(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class ExecutionConfig:
    """How model chunks become a control-rate command stream (see config/execution.yaml for the why)."""

    control_rate: float = 100.0
    model_action_dt: float | None = None  # None: the layout's (the rate the model was trained at)
    mode: str = "async"
    inference_threshold_s: float = 0.8
    sync_execute_steps: int = 8
    chunk_start: int = 0
    chunk_end: int | None = None
    stride: int = 1
    time_offset_s: float = 0.0
    blend: str = "crossfade"
    crossfade_ticks: int = 10
    lowpass_alpha: float = 0.85
    lowpass_ticks: int = 20
    ramp_time: float = 0.2

    def __post_init__(self) -> None:
        problems: list[str] = []
        _positive(problems, "control_rate", self.control_rate)
        if self.model_action_dt is not None:
            _positive(problems, "model_action_dt", self.model_action_dt)
        if self.mode not in MODES:
            problems.append(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.blend not in BLENDS:
            problems.append(f"blend must be one of {BLENDS}, got {self.blend!r}")
        _positive(problems, "inference_threshold_s", self.inference_threshold_s, allow_zero=True)
        _positive(problems, "ramp_time", self.ramp_time, allow_zero=True)
        _integer(problems, "sync_execute_steps", self.sync_execute_steps, 1)
        _integer(problems, "chunk_start", self.chunk_start, 0)
        _integer(problems, "stride", self.stride, 1)
        _integer(problems, "crossfade_ticks", self.crossfade_ticks, 1)
        _integer(problems, "lowpass_ticks", self.lowpass_ticks, 1)
        if self.chunk_end is not None:
            _integer(problems, "chunk_end", self.chunk_end, 1)
            if isinstance(self.chunk_end, int) and isinstance(self.chunk_start, int) and self.chunk_end <= self.chunk_start:
                problems.append(f"chunk_end ({self.chunk_end}) must be greater than chunk_start ({self.chunk_start})")
        if not (isinstance(self.lowpass_alpha, (int, float)) and 0.0 < self.lowpass_alpha < 1.0):
            problems.append(f"lowpass_alpha must be in (0, 1), got {self.lowpass_alpha!r}")
        if not (isinstance(self.time_offset_s, (int, float)) and math.isfinite(self.time_offset_s)):
            problems.append(f"time_offset_s must be a finite number, got {self.time_offset_s!r}")
        if self.blend == "rtc" and self.mode != "async":
            problems.append("blend rtc needs mode async (in sync mode the robot waits: there is no plan under way)")
        _raise_if(problems, "execution")

    @property
    def tick_dt(self) -> float:
        return 1.0 / self.control_rate

    def window_rows(self, chunk_size: int) -> range:
        """Chunk rows kept by the window and stride, in row numbers of the model's chunk."""
        end = chunk_size if self.chunk_end is None else self.chunk_end
        if end > chunk_size or self.chunk_start >= end:
            raise ExecutionConfigError(
                f"chunk window [{self.chunk_start}, {end}) does not fit the layout's chunk of {chunk_size} rows")
        rows = range(self.chunk_start, end, self.stride)
        if self.mode == "sync" and self.sync_execute_steps > len(rows):
            raise ExecutionConfigError(
                f"sync_execute_steps {self.sync_execute_steps} exceeds the {len(rows)} rows left by window "
                f"[{self.chunk_start}, {end}) stride {self.stride}")
        return rows


@dataclass(frozen=True)
class SafetyConfig:
    """The envelope every command passes last; rates are per second, applied per control tick."""

    max_joint_velocity: float = 1.0  # rad/s, arm joints
    torso_max_z_rate: float = 0.1  # m/s of the /cmd_pose height offset
    torso_max_pitch_rate: float = 0.2  # rad/s of the /cmd_pose pitch
    claw_max_rate: float | None = None  # claw units/s; None: the claw controller's own velocity governs
    use_forearm_limit: bool = True

    def __post_init__(self) -> None:
        problems: list[str] = []
        _positive(problems, "max_joint_velocity", self.max_joint_velocity)
        _positive(problems, "torso_max_z_rate", self.torso_max_z_rate)
        _positive(problems, "torso_max_pitch_rate", self.torso_max_pitch_rate)
        if self.claw_max_rate is not None:
            _positive(problems, "claw_max_rate", self.claw_max_rate)
        if not isinstance(self.use_forearm_limit, bool):
            problems.append(f"use_forearm_limit must be true or false, got {self.use_forearm_limit!r}")
        _raise_if(problems, "safety")


@dataclass(frozen=True)
class WatchdogConfig:
    """When to stop consuming chunks and hold, and whether to come back on our own."""

    max_inference_latency_s: float = 1.0
    auto_resume: bool = False
    resume_after_s: float = 0.5  # inputs must stay healthy this long before an automatic resume
    max_stamp_offset_s: float = 0.5  # hold if a header stamp is this far from the message's arrival
    frozen_camera_s: float | None = None  # hold if a camera repeats the same bytes this long (None: off)
    max_stall_s: float = 2.0  # hold if no chunk has been executed this long while running

    def __post_init__(self) -> None:
        problems: list[str] = []
        _positive(problems, "max_inference_latency_s", self.max_inference_latency_s)
        _positive(problems, "max_stall_s", self.max_stall_s)
        if (isinstance(self.max_stall_s, (int, float)) and isinstance(self.max_inference_latency_s, (int, float))
                and self.max_stall_s <= self.max_inference_latency_s):
            problems.append(f"max_stall_s ({self.max_stall_s:g}) must be longer than max_inference_latency_s "
                            f"({self.max_inference_latency_s:g}): a chunk may take that long in sync mode")
        _positive(problems, "max_stamp_offset_s", self.max_stamp_offset_s)
        if self.frozen_camera_s is not None:
            _positive(problems, "frozen_camera_s", self.frozen_camera_s)
        _positive(problems, "resume_after_s", self.resume_after_s, allow_zero=True)
        if not isinstance(self.auto_resume, bool):
            problems.append(f"auto_resume must be true or false, got {self.auto_resume!r}")
        _raise_if(problems, "watchdog")


@dataclass(frozen=True)
class StartupConfig:
    """The start-up sequence before the policy takes over (config/execution.yaml explains each step)."""

    enabled: bool = True
    head: bool = True
    head_yaw_deg: float = 0.0
    head_pitch_deg: float = 20.0
    head_settle_s: float = 1.0
    open_claws: bool = True
    claw_tolerance: float = 5.0
    claw_timeout_s: float = 3.0
    arm_pose_deg: tuple[float, ...] | None = None
    torso_pose: tuple[float, float] | None = None
    move_time_s: float = 5.0
    max_joint_velocity: float = 0.3
    tolerance_deg: float = 3.0
    settle_timeout_s: float = 5.0
    wbc_target_s: float = 0.3

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("head", "open_claws", "enabled"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("head_settle_s", "claw_timeout_s", "move_time_s", "settle_timeout_s",
                     "wbc_target_s", "claw_tolerance"):
            _positive(problems, name, getattr(self, name), allow_zero=name in ("head_settle_s", "move_time_s"))
        for name in ("max_joint_velocity", "tolerance_deg"):
            _positive(problems, name, getattr(self, name))
        if self.arm_pose_deg is not None:
            object.__setattr__(self, "arm_pose_deg", tuple(self.arm_pose_deg))
            if len(self.arm_pose_deg) != 14 or not all(isinstance(v, (int, float)) for v in self.arm_pose_deg):
                problems.append(f"arm_pose_deg must be 14 numbers (degrees, left arm then right) or null, "
                                f"got {self.arm_pose_deg!r}")
        if self.torso_pose is not None:
            object.__setattr__(self, "torso_pose", tuple(self.torso_pose))
            if len(self.torso_pose) != 2:
                problems.append(f"torso_pose must be [height offset m, pitch rad] or null, got {self.torso_pose!r}")
        _raise_if(problems, "startup")


@dataclass(frozen=True)
class RtcConfig:
    """What the core hands the policy with `blend: rtc` (core/prefix.py ChunkPrefix): how much of the plan under
    way, and how many of its rows will have run before the new chunk takes over (from measured latency)."""

    prefix_rows: int = 16
    delay_percentile: float = 90.0
    delay_window: int = 20
    initial_delay_s: float = 0.2

    def __post_init__(self) -> None:
        problems: list[str] = []
        _integer(problems, "prefix_rows", self.prefix_rows, 1)
        _integer(problems, "delay_window", self.delay_window, 1)
        _positive(problems, "initial_delay_s", self.initial_delay_s, allow_zero=True)
        if not (isinstance(self.delay_percentile, (int, float)) and 0 <= self.delay_percentile <= 100):
            problems.append(f"delay_percentile must be in [0, 100], got {self.delay_percentile!r}")
        _raise_if(problems, "rtc")


@dataclass(frozen=True)
class ClawLatchConfig:
    """The users' claw latch (execution/claw_latch.py): a claw commanded closed for `steps` model steps in a row stays
    closed until the episode ends. Off by default; their values otherwise."""

    enabled: bool = False
    threshold: float = 50.0
    steps: int = 5
    closed_value: float = 90.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        _integer(problems, "steps", self.steps, 1)
        for name in ("threshold", "closed_value"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 100.0):
                problems.append(f"{name} must be within 0..100 claw units, got {value!r}")
        _raise_if(problems, "claw_latch")


SECTIONS = ("execution", "safety", "watchdog", "startup", "rtc", "claw_latch")


@dataclass(frozen=True)
class ExecutionSettings:
    execution: ExecutionConfig = ExecutionConfig()
    safety: SafetyConfig = SafetyConfig()
    watchdog: WatchdogConfig = WatchdogConfig()
    startup: StartupConfig = StartupConfig()
    rtc: RtcConfig = RtcConfig()
    claw_latch: ClawLatchConfig = ClawLatchConfig()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "ExecutionSettings":
        data = dict(data or {})
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ExecutionConfigError(f"unknown execution config sections {unknown}; known: {', '.join(SECTIONS)}")
        return cls(from_dict(ExecutionConfig, data.get("execution")), from_dict(SafetyConfig, data.get("safety")),
                   from_dict(WatchdogConfig, data.get("watchdog")), from_dict(StartupConfig, data.get("startup")),
                   from_dict(RtcConfig, data.get("rtc")), from_dict(ClawLatchConfig, data.get("claw_latch")))


def load_execution_settings(path: str | Path | None = None,
                            overrides: Mapping[str, Mapping[str, Any]] | None = None) -> ExecutionSettings:
    """Reads config/execution.yaml (or the given file); `overrides` (section -> keys, e.g. the node's
    ~execution params or a launch file's YAML) replace single keys of it."""
    path = Path(path) if path is not None else config_dir() / "execution.yaml"
    with open(path) as f:
        data = yaml.safe_load(f)
    if data is not None and not isinstance(data, dict):
        raise ExecutionConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    merged = {section: dict(values or {}) for section, values in (data or {}).items()}
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values or {})
    return ExecutionSettings.from_dict(merged)
