"""The policy node's parameters: every ~param read once at start, validated, paths resolved, all problems at once.

roslaunch starts nodes in ROS_HOME, not where the user typed the command, so a relative path the user hands a
launch file (checkpoint:=outputs/train/run/...) is resolved against the directory roslaunch was started from:
~launch_dir (policy.launch sets it from $(env PWD)), else the PWD the node inherited, else the process's cwd.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ARM_JOINTS = 14
BACKENDS = ("topics", "sdk")
DEVICES_HELP = "cpu or cuda[:N]"


class ParamError(ValueError):
    """One or more ~params are unusable; the message lists each with the value given."""


@dataclass(frozen=True)
class NodeParams:
    checkpoint: Path  # Path("") with a policy_server: the robot holds no model
    base_config: Path | None = None
    eagle_assets: Path | None = None
    layout: str = "auto"  # "auto": chosen from the checkpoint (policy/matching.py)
    robot: str = "4_pro"
    topics: str = "sim"  # "auto": the robot's topic set whose cameras are published
    cameras: str = ""  # camera-key overrides "key=camera, ..." (core/cameras.py)
    execution_config: Path | None = None
    execution_overrides: Mapping[str, Any] = field(default_factory=dict)
    backend: str = "topics"
    backend_config: Path | None = None
    direct_to_wbc: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    attention: str = "auto"
    fast_inference: bool = False
    torch_threads: int = 0
    gil_switch_interval_s: float = 0.001
    task: str = ""
    seed: int | None = None
    dry_run: bool = False
    start_paused: bool = False
    observation_log_dir: Path | None = None
    status_rate: float = 2.0
    nominal_height: float | None = None
    open_claws_on_exit: bool = False
    home_pose_deg: tuple[float, ...] = ()
    home_time_s: float = 3.0
    start_pose_from: str = ""  # "" (config/execution.yaml startup), DATASET[:episode] or a .bag
    launch_dir: Path = Path(".")
    policy_server: str = ""  # ws://host:port of `python -m groot_ros serve`: the model runs there
    record_dir: Path | None = None  # deployment runs and takeovers as LeRobot episodes (tools/deployment_recorder)
    record_video: bool = True  # images as mp4 (LeRobot's default) or PNG
    task_success_topic: str = ""  # std_msgs/Bool the scene publishes (the stand-in's ~task_success): trial results


def launch_directory(raw: Mapping[str, Any]) -> Path:
    return Path(str(raw.get("launch_dir") or os.environ.get("PWD") or os.getcwd()))


def resolve_path(value: Any, base: Path, what: str, problems: list[str], *, must_exist: bool = True,
                 kind: str = "any") -> Path | None:
    """'' -> None; a relative path is taken from `base`; a missing one is reported as given and as resolved."""
    if value is None or str(value).strip() == "":
        return None
    given = Path(os.path.expanduser(str(value)))
    path = given if given.is_absolute() else (base / given)
    path = Path(os.path.normpath(path))
    if must_exist:
        ok = path.is_dir() if kind == "dir" else path.is_file() if kind == "file" else path.exists()
        if not ok:
            problems.append(f"{what}: '{value}' does not exist (resolved against {base}: {path})")
    return path


def _name_or_path(value: Any, base: Path) -> str:
    """Layout/topic sets are names (config/...) or YAML files; only a file is resolved against `base`."""
    text = str(value)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return str(resolve_path(text, base, "yaml", [], must_exist=False))
    return text


def _start_pose_source(text: str, base: Path, problems: list[str]) -> str:
    """DATASET[:episode] or BAG, resolved against `base`; the episode suffix is kept."""
    if not text.strip():
        return ""
    head, sep, tail = text.rpartition(":")
    path, suffix = (head, sep + tail) if sep and tail.isdigit() else (text, "")
    resolved = resolve_path(path, base, "~start_pose_from", problems)
    return f"{resolved}{suffix}" if resolved is not None else ""


def parse_params(raw: Mapping[str, Any]) -> NodeParams:
    """Plain dict (rospy.get_param('~')) -> NodeParams; raises ParamError listing every problem."""
    base = launch_directory(raw)
    problems: list[str] = []

    def number(key: str, default: float, cast: type = float, minimum: float | None = None) -> Any:
        value = raw.get(key, default)
        try:
            out = cast(value)
        except (TypeError, ValueError):
            problems.append(f"~{key}: '{value}' is not a {cast.__name__}")
            return default
        if minimum is not None and out < minimum:
            problems.append(f"~{key}: {out} is below {minimum}")
        return out

    server = str(raw.get("policy_server", "") or "").strip()
    checkpoint = resolve_path(raw.get("checkpoint", ""), base, "~checkpoint", problems, kind="dir")
    if server and not server.startswith(("ws://", "wss://")):
        problems.append(f"~policy_server: '{server}' is not a ws://host:port address")
    if server and checkpoint is not None:
        problems.append(f"~checkpoint and ~policy_server both given: the model runs either here ({checkpoint}) or "
                        f"on {server}, not both")
    if checkpoint is None and not server:
        problems.append("~checkpoint (a LeRobot pretrained_model/ directory) or ~policy_server (ws://host:port of "
                        "`python -m groot_ros serve`) is required")
    backend = str(raw.get("backend", "topics"))
    if backend not in BACKENDS:
        problems.append(f"~backend: '{backend}' is not one of {BACKENDS}")
    device = str(raw.get("device", "cpu"))
    if not (device == "cpu" or device.startswith("cuda")):
        problems.append(f"~device: '{device}' is not {DEVICES_HELP}")
    home = raw.get("home_pose_deg", []) or []
    try:
        home_pose = tuple(float(v) for v in home)
    except (TypeError, ValueError):
        problems.append(f"~home_pose_deg: {home!r} is not a list of numbers")
        home_pose = ()
    if home_pose and len(home_pose) != ARM_JOINTS:
        problems.append(f"~home_pose_deg has {len(home_pose)} values; it needs {ARM_JOINTS} (degrees, left arm then "
                        "right arm) or none")
    overrides = raw.get("execution", {}) or {}
    if not isinstance(overrides, Mapping):
        problems.append(f"~execution must be a dict of sections, got {type(overrides).__name__}")
        overrides = {}
    seed = int(number("seed", -1, int))
    start_pose_from = _start_pose_source(str(raw.get("start_pose_from", "") or ""), base, problems)
    nominal = raw.get("nominal_height", None)
    params = NodeParams(
        checkpoint=checkpoint or Path(""),
        base_config=resolve_path(raw.get("base_config", ""), base, "~base_config", problems),
        eagle_assets=resolve_path(raw.get("eagle_assets", ""), base, "~eagle_assets", problems, kind="dir"),
        layout=_name_or_path(raw.get("layout", "auto") or "auto", base),
        robot=str(raw.get("robot", "4_pro")),
        topics=_name_or_path(raw.get("topics", "sim"), base),
        cameras=str(raw.get("cameras", "") or ""),
        execution_config=resolve_path(raw.get("execution_config", ""), base, "~execution_config", problems,
                                      kind="file"),
        execution_overrides=dict(overrides),
        backend=backend,
        backend_config=resolve_path(raw.get("backend_config", ""), base, "~backend_config", problems, kind="file"),
        direct_to_wbc=bool(raw.get("direct_to_wbc", False)),
        device=device,
        dtype=str(raw.get("dtype", "float32")),
        attention=str(raw.get("attention", "auto")),
        fast_inference=bool(raw.get("fast_inference", False)),
        torch_threads=int(number("torch_threads", 0, int)),
        gil_switch_interval_s=number("gil_switch_interval_s", 0.001, float, minimum=1e-5),
        task=str(raw.get("task", "") or ""),
        seed=seed if seed >= 0 else None,
        dry_run=bool(raw.get("dry_run", False)),
        start_paused=bool(raw.get("start_paused", False)),
        observation_log_dir=resolve_path(raw.get("observation_log_dir", ""), base, "~observation_log_dir", problems,
                                         must_exist=False),
        status_rate=number("status_rate", 2.0, float, minimum=0.1),
        nominal_height=None if nominal is None else number("nominal_height", 0.0, float),
        open_claws_on_exit=bool(raw.get("open_claws_on_exit", False)),
        home_pose_deg=home_pose,
        home_time_s=number("home_time_s", 3.0, float, minimum=0.1),
        start_pose_from=start_pose_from,
        launch_dir=base,
        policy_server=server,
        record_dir=resolve_path(raw.get("record_dir", ""), base, "~record_dir", problems, must_exist=False),
        record_video=bool(raw.get("record_video", True)),
        task_success_topic=str(raw.get("task_success_topic", "") or ""),
    )
    if problems:
        raise ParamError("groot_policy parameters:\n  - " + "\n  - ".join(problems))
    return params


def read_params() -> NodeParams:
    """This node's private parameters, from the master, once."""
    import rospy

    return parse_params(rospy.get_param("~", {}))
