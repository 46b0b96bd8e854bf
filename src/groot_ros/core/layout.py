"""The one definition of what the model sees and what it commands.

A `Layout` joins three config files: the state/action layout of a checkpoint (config/layouts), the robot
version (config/robots: joint count, arm slice, limits) and the topic set (config/topics: sensor streams,
cameras, command channels). The policy node, the bag converter and the evaluator all build their vectors
through this module, so a train/deploy mismatch can only come from the config, never from two codings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from groot_ros.core.paths import config_dir

ACTION_CHANNELS = ("arm", "claw", "torso")
INTERPOLATIONS = ("linear", "hold")


class LayoutError(ValueError):
    """A layout that cannot be right; the message lists every problem found."""


class NameMapError(ValueError):
    """A message names its joints or claws, but with names no known set maps (the names are in the message)."""


# The claw controller's names (Kuavo: exactly these, kuavo.md).
CLAW_NAMES = ("left_claw", "right_claw")


@dataclass(frozen=True)
class StateComponent:
    name: str
    dim: int
    units: tuple[str, ...]
    stream: str
    field: str
    indices: tuple[int, ...]
    # True when the field is the robot's whole joint vector (`index: arm`): its length must be num_joints.
    joint_vector: bool = False
    # Per-dimension feature names as the dataset writes them (humanoid_groot's: arm_joint_1, left_claw_state...).
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionComponent:
    name: str
    dim: int
    units: tuple[str, ...]
    channel: str
    indices: tuple[int, ...]
    interpolation: str
    # Where the robot's current value of this action lives in the state vector: the start pose of a chunk
    # ramp and the pose held when inputs fail. relative: the action is an offset from a nominal value
    # (Cmd_pose_z is a height offset, the Com_z_pitch state an absolute height).
    measured_state: str = ""
    measured_index: tuple[int, ...] = ()
    measured_relative: bool = False
    names: tuple[str, ...] = ()  # per-dimension feature names, as for StateComponent


@dataclass(frozen=True)
class StreamSpec:
    name: str
    topic: str
    msg_type: str
    max_age: float


@dataclass(frozen=True)
class CameraSpec:
    name: str
    key: str
    topic: str
    msg_type: str
    rotate_180: bool
    max_age: float


@dataclass(frozen=True)
class CommandSpec:
    """A command channel: `fields` are scalar paths, or `field` one sequence path, in message units."""

    channel: str
    topic: str
    msg_type: str
    dim: int
    field: str | None
    fields: tuple[str, ...]
    scale: float

    def values_from_message(self, msg: Any) -> np.ndarray:
        """The channel's values in robot units from one command message (inverse of the backends' scaling)."""
        raw = read_field(msg, self.field) if self.field else [read_field(msg, f) for f in self.fields]
        return np.asarray(raw, dtype=np.float64) / self.scale


@dataclass(frozen=True)
class RobotServices:
    """The controller services a robot version offers for the arm-mode handshake (config/robots/*.yaml)."""

    arm_mode: str  # set the arm control mode (kuavo_msgs/changeArmCtrlMode)
    arm_mode_get: str  # read it back (same type)
    quick_mode: str  # direct-to-WBC (biped) / quick arm mode (wheel)
    quick_mode_type: str  # kuavo_msgs/changeArmCtrlMode (control_mode 0/1) or std_srvs/SetBool


@dataclass(frozen=True)
class RobotSpec:
    version: str
    num_joints: int | None
    arm_slice: tuple[int, int]
    arm_joint_names: tuple[str, ...]
    arm_limits: np.ndarray = field(compare=False)  # (14, 2) rad, URDF
    forearm_limit: tuple[float, float]  # rad, applied to joints 4 and 11 (index 3 and 10)
    torso_z_limits: tuple[float, float]
    torso_pitch_limits: tuple[float, float]
    claw_limits: tuple[float, float]
    services: RobotServices | None = None
    # ROS params whose sum is the arm slice start on this robot (/legRealDof + /waistRealDof, as the SDK counts).
    arm_start_params: tuple[str, ...] = ()
    # Camera topic sets this robot is found with, in order of preference (config/topics); the first is the default.
    topic_sets: tuple[str, ...] = ()
    # Command topics this robot version names differently from the topic set (channel -> topic).
    command_topics: Mapping[str, str] = field(default_factory=dict, compare=False)

    def joint_count_problem(self, comp: "StateComponent", count: int) -> str | None:
        """A whole joint vector of another length parses, but means other joints: why it is refused, or None."""
        if comp.joint_vector and self.num_joints is not None and count != self.num_joints:
            return f"{comp.field} has {count} joints, robot '{self.version}' has {self.num_joints}"
        return None


@dataclass(frozen=True)
class Layout:
    name: str
    embodiment_tag: str
    model_action_dt: float
    chunk_size: int
    state: tuple[StateComponent, ...]
    action: tuple[ActionComponent, ...]
    cameras: tuple[CameraSpec, ...]
    streams: Mapping[str, StreamSpec]
    commands: Mapping[str, CommandSpec]
    robot: RobotSpec
    topics_name: str

    @property
    def state_dim(self) -> int:
        return sum(c.dim for c in self.state)

    @property
    def action_dim(self) -> int:
        return sum(c.dim for c in self.action)

    @property
    def state_names(self) -> list[str]:
        return _dim_names(self.state)

    @property
    def action_names(self) -> list[str]:
        return _dim_names(self.action)

    @property
    def state_feature_names(self) -> list[str]:
        """Per-dimension names of observation.state as datasets write them (the layout's `names`)."""
        return _feature_names(self.state)

    @property
    def action_feature_names(self) -> list[str]:
        return _feature_names(self.action)

    @property
    def camera_keys(self) -> list[str]:
        return [c.key for c in self.cameras]

    def state_slices(self) -> dict[str, slice]:
        return _slices(self.state)

    def action_slices(self) -> dict[str, slice]:
        return _slices(self.action)

    def action_interpolation_mask(self) -> np.ndarray:
        """True for dimensions interpolated linearly between chunk rows, False for zero-order hold."""
        return np.concatenate([np.full(c.dim, c.interpolation == "linear") for c in self.action])

    def used_streams(self) -> list[str]:
        return list(dict.fromkeys(c.stream for c in self.state))

    def name_sets(self) -> tuple[tuple[str, ...], ...]:
        """The joint and claw names Kuavo's messages use, each set in the layout's order: the robot's URDF arm
        names, `arm_joint_1..14` (what recordings use), the claw controller's `left_claw`/`right_claw`."""
        arm = self.robot.arm_joint_names
        return arm, tuple(f"arm_joint_{i + 1}" for i in range(len(arm))), CLAW_NAMES

    def field_values(self, msg: Any, path: str, what: str) -> tuple[np.ndarray, bool]:
        """A message field's values in the layout's order: by name when the message names them (a `name` field
        beside `path`, as JointState and endEffectorData have), else by index. Returns (values, by_name); raises
        NameMapError when the names are there but no known set maps them."""
        values = np.asarray(read_field(msg, path), dtype=np.float64).ravel()
        head = path.rpartition(".")[0]
        try:
            names = list(read_field(msg, f"{head}.name" if head else "name"))
        except (AttributeError, TypeError):
            names = []
        order = order_by_name(names, self.name_sets(), what, len(values))
        return (values, False) if order is None else (values[order], True)

    def command_values(self, channel: str, msg: Any) -> tuple[np.ndarray, bool]:
        """One command message's channel values in robot units, by name when it names them (see field_values)."""
        spec = self.commands[channel]
        if not spec.field:
            return spec.values_from_message(msg), False
        values, by_name = self.field_values(msg, spec.field, f"{channel} command on {spec.topic}")
        return values / spec.scale, by_name

    def state_from_messages(self, messages: Mapping[str, Any]) -> np.ndarray:
        """Builds the state vector from the latest message of each stream (any object with the fields), by name
        where a message names its values."""
        parts = []
        for comp in self.state:
            topic = self.streams[comp.stream].topic
            values, _ = self.field_values(messages[comp.stream], comp.field, f"{comp.stream} ({topic}) {comp.field}")
            if len(values) <= max(comp.indices):
                raise IndexError(f"{comp.stream} ({topic}): {comp.field} has {len(values)} values, {comp.name} "
                                 f"needs index {max(comp.indices)}")
            parts.append(values[list(comp.indices)])
        return np.concatenate(parts) if parts else np.zeros(0)

    def measured_action(self, state: np.ndarray, nominal_height: float = 0.0) -> np.ndarray:
        """The robot's current pose in action space, read from a state vector (robot units)."""
        state = np.asarray(state, dtype=np.float64)
        slices = self.state_slices()
        parts = []
        for comp in self.action:
            values = state[slices[comp.measured_state]][list(comp.measured_index)]
            parts.append(values - nominal_height if comp.measured_relative else values)
        return np.concatenate(parts)

    @property
    def action_channels(self) -> list[str]:
        """The command channels the action uses (arm, claw, torso), in the action's order, each once."""
        return list(dict.fromkeys(c.channel for c in self.action))

    def action_indices(self, channel: str) -> list[int]:
        """Positions in the action vector of one command channel's components (e.g. the claws)."""
        slices = self.action_slices()
        return [i for c in self.action if c.channel == channel for i in range(slices[c.name].start,
                                                                             slices[c.name].stop)]

    def channel_values(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Splits an action vector (..., action_dim) into command channels in robot units."""
        action = np.asarray(action, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        offset = 0
        for comp in self.action:
            dim = self.commands[comp.channel].dim
            buf = out.setdefault(comp.channel, np.full(action.shape[:-1] + (dim,), np.nan))
            buf[..., list(comp.indices)] = action[..., offset : offset + comp.dim]
            offset += comp.dim
        return out

    def action_from_channels(self, channels: Mapping[str, np.ndarray]) -> np.ndarray:
        """Inverse of channel_values: the action vector from command channel values (robot units)."""
        return np.concatenate(
            [np.asarray(channels[c.channel], dtype=np.float64)[..., list(c.indices)] for c in self.action], axis=-1
        )


def order_by_name(names: Sequence[str], known: Sequence[Sequence[str]], what: str, count: int) -> list[int] | None:
    """Positions in a named message that give its values in the order of the known name set it holds (the same
    names, any order); None when the message names nothing (read by index). Names that are no known set are
    refused: guessing there is how a right arm ends up in the left arm's columns."""
    names = [str(n) for n in names]
    if not names:
        return None
    if len(names) != count:
        raise NameMapError(f"{what}: {len(names)} names for {count} values")
    where = {n: i for i, n in enumerate(names)}
    for candidate in known:
        if len(candidate) == count and set(candidate) == set(names):
            return [where[n] for n in candidate]
    raise NameMapError(f"{what}: names {names} are no known set (" + "; ".join(
        f"{k[0]}..{k[-1]}" for k in known) + "): cannot tell which value is which")


def read_field(msg: Any, path: str) -> Any:
    """Follows a dotted attribute path ("joint_data.joint_q") into a message or any object."""
    value = msg
    for part in path.split("."):
        value = getattr(value, part)
    return value


def write_field(msg: Any, path: str, value: Any) -> None:
    """Sets a dotted attribute path ("data.position", "linear.z"); the inverse of layout.read_field."""
    head, _, last = path.rpartition(".")
    setattr(read_field(msg, head) if head else msg, last, value)


def _dim_names(components: Sequence[StateComponent | ActionComponent]) -> list[str]:
    names: list[str] = []
    for c in components:
        names.extend([c.name] if c.dim == 1 else [f"{c.name}_{i}" for i in range(c.dim)])
    return names


def _feature_names(components: Sequence[StateComponent | ActionComponent]) -> list[str]:
    names: list[str] = []
    for c in components:
        names.extend(c.names or _dim_names([c]))
    return names


def _slices(components: Sequence[StateComponent | ActionComponent]) -> dict[str, slice]:
    out, offset = {}, 0
    for c in components:
        out[c.name] = slice(offset, offset + c.dim)
        offset += c.dim
    return out


def _resolve(kind: str, name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = config_dir() / kind / f"{name_or_path}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in (config_dir() / kind).glob("*.yaml"))
        raise LayoutError(f"unknown {kind[:-1]} '{name_or_path}': expected one of {known} or a YAML path")
    return candidate


def _read_yaml(path: Path) -> dict:
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: expected a mapping at the top level")
    return data


def read_topics(topics: str | Path) -> dict:
    """A topic set; `extends: <set>` starts from another set and replaces entries section by section
    (e.g. real_orbbec_head_flipped only turns the head camera around)."""
    data = _read_yaml(_resolve("topics", topics))
    parent = data.pop("extends", None)
    if parent is None:
        return data
    merged = read_topics(parent)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **{k: {**merged[key].get(k, {}), **v} if isinstance(v, dict) else v
                                             for k, v in value.items()}}
        else:
            merged[key] = value
    return merged


def _units(raw: Any, dim: int) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        return tuple(str(u) for u in raw)
    return (str(raw),) * dim


def load_robot(robot: str | Path) -> RobotSpec:
    data = _read_yaml(_resolve("robots", robot))
    deg = math.radians
    forearm = data.get("forearm_limit_deg") or data["arm_limits_deg"][3]
    return RobotSpec(
        version=str(data["robot_version"]),
        num_joints=data.get("num_joints"),
        arm_slice=(int(data["arm_slice"][0]), int(data["arm_slice"][1])),
        arm_joint_names=tuple(data["arm_joint_names"]),
        arm_limits=np.radians(np.asarray(data["arm_limits_deg"], dtype=np.float64)),
        forearm_limit=(deg(forearm[0]), deg(forearm[1])),
        torso_z_limits=tuple(float(v) for v in data["torso_z_limits"]),
        torso_pitch_limits=tuple(float(v) for v in data["torso_pitch_limits"]),
        claw_limits=tuple(float(v) for v in data["claw_limits"]),
        services=_services(data.get("services")),
        arm_start_params=tuple(str(p) for p in data.get("arm_start_params") or ()),
        topic_sets=tuple(str(t) for t in data.get("topic_sets") or ()),
        command_topics={str(k): str(v) for k, v in (data.get("command_topics") or {}).items()},
    )


def _services(raw: Mapping[str, Any] | None) -> RobotServices | None:
    if not raw:
        return None
    quick = raw["quick_mode"]
    return RobotServices(arm_mode=str(raw["arm_mode"]), arm_mode_get=str(raw["arm_mode_get"]),
                         quick_mode=str(quick["service"]), quick_mode_type=str(quick["type"]))


def load_layout(
    layout: str | Path = "depalletize", robot: str | Path = "4_pro", topics: str | Path = "sim",
    cameras: Mapping[str, str] | None = None,
) -> Layout:
    """Loads and checks a layout; every inconsistency is reported at once in one LayoutError.

    cameras: logical camera name -> checkpoint key, replacing the layout's own `cameras` block (the
    checkpoint decides which cameras the model takes: core/cameras.py maps its keys).
    """
    layout_path = _resolve("layouts", layout)
    data = _read_yaml(layout_path)
    topic_data = read_topics(topics)
    robot_spec = load_robot(robot)
    problems: list[str] = []

    streams = {
        name: StreamSpec(name, s["topic"], s["type"], float(s.get("max_age", 0.1)))
        for name, s in (topic_data.get("streams") or {}).items()
    }
    commands = {
        ch: CommandSpec(
            channel=ch,
            topic=robot_spec.command_topics.get(ch, c["topic"]),
            msg_type=c["type"],
            dim=int(c["dim"]),
            field=c.get("field"),
            fields=tuple(c.get("fields") or ()),
            scale=float(c.get("scale", 1.0)),
        )
        for ch, c in (topic_data.get("commands") or {}).items()
    }

    state = []
    for raw in data.get("state") or []:
        index = raw.get("index")
        if index == "arm":
            indices = tuple(range(*robot_spec.arm_slice))
        else:
            indices = tuple(int(i) for i in index)
        state.append(
            StateComponent(raw["name"], int(raw["dim"]), _units(raw.get("units", ""), int(raw["dim"])),
                           raw["stream"], raw["field"], indices, joint_vector=index == "arm",
                           names=tuple(str(n) for n in raw.get("names") or ()))
        )
    action = [
        ActionComponent(raw["name"], int(raw["dim"]), _units(raw.get("units", ""), int(raw["dim"])),
                        raw["channel"], tuple(int(i) for i in raw["index"]), raw.get("interpolation", "linear"),
                        measured_state=str((raw.get("measured") or {}).get("state", "")),
                        measured_index=tuple(int(i) for i in (raw.get("measured") or {}).get("index", ())),
                        measured_relative=bool((raw.get("measured") or {}).get("relative", False)),
                        names=tuple(str(n) for n in raw.get("names") or ()))
        for raw in data.get("action") or []
    ]
    camera_topics = topic_data.get("cameras") or {}
    camera_keys = (data.get("cameras") or {}) if cameras is None else cameras
    camera_specs = []
    for cam_name, key in camera_keys.items():
        cam = camera_topics.get(cam_name)
        if cam is None:
            problems.append(f"camera '{cam_name}' has no topic in topics config '{topic_data.get('name')}'")
            continue
        camera_specs.append(CameraSpec(cam_name, key, cam["topic"], cam["type"], bool(cam.get("rotate_180", False)),
                                  float(cam.get("max_age", 0.3))))

    result = Layout(
        name=str(data.get("name", layout_path.stem)),
        embodiment_tag=str(data.get("embodiment_tag", "new_embodiment")),
        model_action_dt=float(data.get("model_action_dt", 0.1)),
        chunk_size=int(data.get("chunk_size", 16)),
        state=tuple(state),
        action=tuple(action),
        cameras=tuple(camera_specs),
        streams=streams,
        commands=commands,
        robot=robot_spec,
        topics_name=str(topic_data.get("name", "")),
    )
    problems += layout_problems(result)
    if problems:
        raise LayoutError(f"layout '{layout_path}' is inconsistent:\n  - " + "\n  - ".join(problems))
    return result


def layout_problems(layout: Layout) -> list[str]:
    """The rules a layout must obey before anything is built from it."""
    problems = []
    for comps, what in ((layout.state, "state"), (layout.action, "action")):
        names = [c.name for c in comps]
        if len(set(names)) != len(names):
            problems.append(f"duplicate {what} component names: {names}")
        if not comps:
            problems.append(f"no {what} components")
        for c in comps:
            if len(c.indices) != c.dim:
                problems.append(f"{what} '{c.name}': dim {c.dim} but {len(c.indices)} indices")
            if len(c.units) != c.dim:
                problems.append(f"{what} '{c.name}': dim {c.dim} but {len(c.units)} units")
            if c.names and len(c.names) != c.dim:
                problems.append(f"{what} '{c.name}': dim {c.dim} but {len(c.names)} names")
    for c in layout.state:
        if c.stream not in layout.streams:
            problems.append(f"state '{c.name}' reads unknown stream '{c.stream}'")
    arm_len = layout.robot.arm_slice[1] - layout.robot.arm_slice[0]
    if arm_len != len(layout.robot.arm_joint_names) or layout.robot.arm_limits.shape != (arm_len, 2):
        problems.append(f"robot '{layout.robot.version}': arm slice, joint names and limits disagree in length")
    filled: dict[str, list[int]] = {}
    for c in layout.action:
        if c.channel not in ACTION_CHANNELS:
            problems.append(f"action '{c.name}': unknown channel '{c.channel}' (known: {ACTION_CHANNELS})")
            continue
        if c.interpolation not in INTERPOLATIONS:
            problems.append(f"action '{c.name}': interpolation '{c.interpolation}' not in {INTERPOLATIONS}")
        spec = layout.commands.get(c.channel)
        if spec is None:
            problems.append(f"action '{c.name}': channel '{c.channel}' has no command topic")
            continue
        if any(i < 0 or i >= spec.dim for i in c.indices):
            problems.append(f"action '{c.name}': indices {list(c.indices)} outside channel '{c.channel}' (dim {spec.dim})")
        filled.setdefault(c.channel, []).extend(c.indices)
    state_dims = {c.name: c.dim for c in layout.state}
    for c in layout.action:
        if c.measured_state not in state_dims:
            problems.append(f"action '{c.name}': `measured.state` must name a state component {sorted(state_dims)}")
        elif len(c.measured_index) != c.dim or any(not 0 <= i < state_dims[c.measured_state] for i in c.measured_index):
            problems.append(f"action '{c.name}': `measured.index` needs {c.dim} indices into '{c.measured_state}'")
    for channel, idx in filled.items():
        spec = layout.commands[channel]
        if sorted(idx) != list(range(spec.dim)):
            problems.append(f"channel '{channel}' must be filled exactly once per dimension, got indices {sorted(idx)}")
    # The torso command is an offset trained against the measured torso pose: without that state the
    # policy cannot know where the torso is, which is how the seed's first torso runs drifted.
    if "torso" in filled and not any(s.stream == "torso" for s in layout.state):
        problems.append("Cmd_pose_* (torso channel) actions need a state component from the 'torso' stream (Com_z_pitch)")
    if "claw" in filled and not any(s.stream == "claws" for s in layout.state):
        problems.append("claw actions need a claw state component (Claw_pos)")
    if layout.model_action_dt <= 0 or layout.chunk_size <= 0:
        problems.append("model_action_dt and chunk_size must be positive")
    keys = layout.camera_keys
    if len(set(keys)) != len(keys) or any(not k.startswith("observation.images.") for k in keys):
        problems.append(f"camera keys must be unique observation.images.* keys, got {keys}")
    return problems


def stats_problems(layout: Layout, state_dim: int | None, action_dim: int | None,
                   camera_keys: Sequence[str] | None, embodiment_tag: str | None) -> list[str]:
    """Mismatches between the layout and what a checkpoint or dataset declares (None: not declared)."""
    problems = []
    if state_dim is not None and state_dim != layout.state_dim:
        problems.append(f"state dim: checkpoint {state_dim}, layout '{layout.name}' {layout.state_dim} "
                        f"({', '.join(f'{c.name}:{c.dim}' for c in layout.state)})")
    if action_dim is not None and action_dim != layout.action_dim:
        problems.append(f"action dim: checkpoint {action_dim}, layout '{layout.name}' {layout.action_dim} "
                        f"({', '.join(f'{c.name}:{c.dim}' for c in layout.action)})")
    if camera_keys is not None:
        missing = sorted(set(camera_keys) - set(layout.camera_keys))
        extra = sorted(set(layout.camera_keys) - set(camera_keys))
        if missing:
            problems.append(f"checkpoint camera keys {missing} have no camera in layout '{layout.name}'")
        if extra:
            problems.append(f"layout cameras {extra} are not inputs of the checkpoint ({sorted(camera_keys)})")
    if embodiment_tag is not None and embodiment_tag != layout.embodiment_tag:
        problems.append(f"embodiment tag: checkpoint '{embodiment_tag}', layout '{layout.embodiment_tag}'")
    return problems
