"""The checkpoint decides what the model takes: which shipped layout, which cameras, which default task.

A LeRobot checkpoint declares its state/action dims and camera keys (config.json); its train_config.json
names the dataset it was trained on, whose meta/info.json has the per-dimension feature names and whose
meta/tasks.parquet the task strings. From these we pick the one shipped layout (config/layouts) whose dims
(and names, where known) match, map the camera keys to the robot's cameras (core/cameras.py), and say in
one block what was chosen and why. A checkpoint that fits no layout is an error that lists what it takes
and which known components it would need, so the user can write the layout instead of guessing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from groot_ros.core.cameras import CameraNameError, map_camera_keys, parse_overrides, short_name
from groot_ros.core.layout import Layout, LayoutError, load_layout
from groot_ros.core.observation import DEFAULT_TASK
from groot_ros.core.paths import config_dir
from groot_ros.policy.action_heads import HeadError, detect_head, read_weight_shapes
from groot_ros.policy.checkpoint import CheckpointError, read_json

AUTO = ("", "auto")


@dataclass(frozen=True)
class TrainingData:
    """What the checkpoint's training dataset says, when the dataset can be found (root None: not found)."""

    root: Path | None
    repo_id: str | None
    state_names: tuple[str, ...] | None
    action_names: tuple[str, ...] | None
    tasks: tuple[str, ...]
    note: str  # where it was found, or why not
    fps: float | None = None  # the dataset's frame rate: the model's step is 1 / fps


@dataclass(frozen=True)
class CheckpointInputs:
    path: Path
    state_dim: int | None
    action_dim: int | None
    camera_keys: tuple[str, ...]
    data: TrainingData
    image_sizes: Mapping[str, tuple[int, int]]  # camera key -> (height, width) the model was trained on
    head: str  # the action head its weights carry (policy/action_heads.py), or why it is unknown


@dataclass(frozen=True)
class LayoutChoice:
    layout: Layout
    how: str  # why this layout
    inputs: CheckpointInputs


def _feature_names(feature: Mapping | None) -> tuple[str, ...] | None:
    names = (feature or {}).get("names")
    if isinstance(names, Mapping):  # older LeRobot datasets: {"motors": [...]}
        names = next(iter(names.values()), None)
    return tuple(str(n) for n in names) if isinstance(names, list) else None


def _dataset_candidates(root: str | None, repo_id: str | None, checkpoint: Path) -> list[Path]:
    out: list[Path] = []
    if root:
        given = Path(os.path.expanduser(root))
        out += [given] if given.is_absolute() else [checkpoint / given, *(p / given for p in checkpoint.parents)]
    if repo_id:
        home = os.environ.get("HF_LEROBOT_HOME")
        if home:
            out.append(Path(home) / repo_id)
        out.append(Path.home() / ".cache" / "huggingface" / "lerobot" / repo_id)
    return out


def _tasks(root: Path) -> tuple[str, ...]:
    parquet, jsonl = root / "meta" / "tasks.parquet", root / "meta" / "tasks.jsonl"
    if parquet.is_file():
        import pyarrow.parquet as pq

        table = pq.read_table(parquet).to_pandas()
        if "task_index" in table.columns:
            table = table.sort_values("task_index")
        return tuple(str(t) for t in (table["task"] if "task" in table.columns else table.index))
    if jsonl.is_file():  # LeRobot v2.1
        rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
        return tuple(str(r["task"]) for r in sorted(rows, key=lambda r: r.get("task_index", 0)))
    return ()


def training_data(checkpoint: Path) -> TrainingData:
    """The dataset named by the checkpoint's train_config.json: feature names and tasks, if it is here."""
    config = checkpoint / "train_config.json"
    if not config.is_file():
        return TrainingData(None, None, None, None, (), f"no {config.name} in the checkpoint")
    dataset = read_json(config).get("dataset") or {}
    repo_id, root = dataset.get("repo_id"), dataset.get("root")
    for candidate in _dataset_candidates(root, repo_id, checkpoint):
        info = candidate / "meta" / "info.json"
        if info.is_file():
            meta = read_json(info)
            features = meta.get("features", {})
            fps = meta.get("fps")
            return TrainingData(candidate, repo_id, _feature_names(features.get("observation.state")),
                                _feature_names(features.get("action")), _tasks(candidate), f"dataset {candidate}",
                                float(fps) if isinstance(fps, (int, float)) and fps > 0 else None)
    return TrainingData(None, repo_id, None, None, (),
                        f"training dataset '{repo_id}' (root {root}) is not on this machine: matched by dims only")


def read_inputs(checkpoint: str | Path) -> CheckpointInputs:
    path = Path(checkpoint)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"checkpoint {path} has no config.json (expected a LeRobot pretrained_model/ dir)")
    config = read_json(config_file)
    inputs, outputs = config.get("input_features", {}), config.get("output_features", {})

    def dim(features: Mapping, key: str) -> int | None:
        shape = (features.get(key) or {}).get("shape")
        return int(shape[0]) if shape else None

    cameras = tuple(sorted(k for k, v in inputs.items() if v.get("type") == "VISUAL"))
    sizes = {k: (int(inputs[k]["shape"][1]), int(inputs[k]["shape"][2])) for k in cameras
             if len(inputs[k].get("shape") or ()) == 3}
    return CheckpointInputs(path, dim(inputs, "observation.state"), dim(outputs, "action"), cameras,
                            training_data(path), sizes, _head(path / "model.safetensors"))


def _head(weights: Path) -> str:
    """The head's one-line description; the load itself refuses an unknown or unreadable one with the details."""
    if not weights.is_file():
        return "unknown (no model.safetensors)"
    try:
        return detect_head(read_weight_shapes(weights)).describe()
    except HeadError:
        return "unknown to groot_ros (the load lists its weights)"
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for a damaged file
        return f"unreadable ({type(exc).__name__})"


def shipped_layouts() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "layouts").glob("*.yaml"))


def _signature(layout: Layout) -> str:
    return (f"{layout.name}: state {layout.state_dim} ({' + '.join(f'{c.name} {c.dim}' for c in layout.state)}), "
            f"action {layout.action_dim} ({' + '.join(f'{c.name} {c.dim}' for c in layout.action)})")


def _decompose(names: Sequence[str], catalog: Mapping[tuple[str, ...], str]) -> str:
    """Checkpoint per-dim names as known components, in order, and whatever is left unknown."""
    parts, i, unknown = [], 0, []
    while i < len(names):
        for comp_names, comp in catalog.items():
            if tuple(names[i:i + len(comp_names)]) == comp_names:
                if unknown:
                    parts.append(f"unknown [{', '.join(unknown)}]")
                    unknown = []
                parts.append(f"{comp} ({len(comp_names)})")
                i += len(comp_names)
                break
        else:
            unknown.append(names[i])
            i += 1
    if unknown:
        parts.append(f"unknown [{', '.join(unknown)}]")
    return " + ".join(parts)


def choose_layout(checkpoint: str | Path | CheckpointInputs, robot: str, topics: str,
                  layout: str | Path | None = None,
                  camera_overrides: str | Mapping[str, str] | None = None) -> LayoutChoice:
    """The layout for this checkpoint on this robot and topic set; CheckpointError says why there is none.
    checkpoint: a directory, or what a policy server says it serves (policy/remote.py remote_inputs)."""
    inputs = checkpoint if isinstance(checkpoint, CheckpointInputs) else read_inputs(checkpoint)
    try:
        cameras = map_camera_keys(inputs.camera_keys, parse_overrides(camera_overrides))
    except CameraNameError as exc:
        raise CheckpointError(f"checkpoint {inputs.path}: {exc}") from exc
    given = layout is not None and str(layout) not in AUTO
    names = [str(layout)] if given else shipped_layouts()
    loaded: list[Layout] = []
    problems: list[str] = []
    for name in names:
        try:
            loaded.append(load_layout(name, robot, topics, cameras=cameras))
        except LayoutError as exc:
            problems.append(str(exc))
    if not loaded:  # the same camera/topic problem for every layout: say it once
        raise CheckpointError(f"checkpoint {inputs.path} cannot run with topics '{topics}':\n  - "
                              + "\n  - ".join(dict.fromkeys(problems)))
    if given:
        return _at_dataset_step(LayoutChoice(loaded[0], "given (layout:=)", inputs))
    data = inputs.data
    by_dims = [lay for lay in loaded if (lay.state_dim, lay.action_dim) == (inputs.state_dim, inputs.action_dim)]
    named = data.state_names is not None and data.action_names is not None
    matches = [lay for lay in by_dims if not named or (tuple(lay.state_feature_names) == data.state_names
                                                        and tuple(lay.action_feature_names) == data.action_names)]
    if len(matches) == 1:
        how = ("state/action feature names of " + data.note) if named else f"state {inputs.state_dim} / action " \
              f"{inputs.action_dim} dims ({data.note})"
        return _at_dataset_step(LayoutChoice(matches[0], how, inputs))
    if len(matches) > 1:
        raise CheckpointError(f"checkpoint {inputs.path} fits several layouts: "
                              + "; ".join(_signature(lay) for lay in matches) + ". Choose one with layout:=<name>")
    state_catalog = {tuple(c.names): c.name for lay in loaded for c in lay.state if c.names}
    action_catalog = {tuple(c.names): c.name for lay in loaded for c in lay.action if c.names}
    lines = [f"state {inputs.state_dim} dims, action {inputs.action_dim} dims, cameras "
             f"{[short_name(k) for k in inputs.camera_keys]}"]
    if named:
        lines.append(f"state = {_decompose(data.state_names, state_catalog)}")
        lines.append(f"action = {_decompose(data.action_names, action_catalog)}")
    else:
        lines.append(f"no per-dimension names ({data.note})")
    lines.append("shipped layouts: " + "; ".join(_signature(lay) for lay in loaded))
    lines.append("write a layout YAML with these components (config/layouts/*.yaml shows how) and pass layout:=<path>")
    raise CheckpointError(f"checkpoint {inputs.path} matches no shipped layout:\n  - " + "\n  - ".join(lines))


def _at_dataset_step(choice: LayoutChoice) -> LayoutChoice:
    """The model's chunk rows are the training dataset's frames apart: a checkpoint trained at 30 fps run with a
    layout's 0.1 s rows would move 3x slow. Where the dataset is here, its fps wins, and the start-up block says so."""
    fps, layout = choice.inputs.data.fps, choice.layout
    if fps is None or abs(layout.model_action_dt * fps - 1.0) < 1e-6:
        return choice
    how = (f"{choice.how}; model step {1.0 / fps:.4f} s from the training dataset's fps {fps:g} (layout "
           f"'{layout.name}' says {layout.model_action_dt:g} s)")
    return LayoutChoice(dataclasses.replace(layout, model_action_dt=1.0 / fps), how, choice.inputs)


def choose_task(given: str, data: TrainingData) -> tuple[str, str]:
    """(task, where it came from): task:= wins, then the training data's first task, then DEFAULT_TASK."""
    if given:
        return given, "task:="
    if data.tasks:
        extra = f" (first of {len(data.tasks)}: {list(data.tasks)})" if len(data.tasks) > 1 else ""
        return data.tasks[0], f"training data {data.root}{extra}"
    return DEFAULT_TASK, f"groot_ros default ({data.note}; no tasks found)"


def decode_sizes(choice: LayoutChoice) -> dict[str, tuple[int, int]]:
    """Robot camera name -> the (height, width) the model takes from it: decode no more than that."""
    sizes = choice.inputs.image_sizes
    return {c.name: sizes[c.key] for c in choice.layout.cameras if c.key in sizes}


def describe(choice: LayoutChoice, task: str, task_source: str, extra: Sequence[str] = ()) -> str:
    """The one start-up block: what the checkpoint takes and what was chosen for it."""
    lay, inputs = choice.layout, choice.inputs
    lines = [f"checkpoint {inputs.path}",
             f"  layout   {_signature(lay)} <- {choice.how}",
             f"  head     {inputs.head}",
             f"  robot    {lay.robot.version} (arm slice {lay.robot.arm_slice[0]}:{lay.robot.arm_slice[1]}), "
             f"topics '{lay.topics_name}'"]
    lines += [f"  camera   {c.key} <- {c.name} {c.topic} ({c.msg_type}{', rotated 180 deg' if c.rotate_180 else ''})"
              for c in lay.cameras]
    lines += [f"  stream   {n} {lay.streams[n].topic}" for n in lay.used_streams()]
    lines += [f"  command  {ch} {lay.commands[ch].topic}" for ch in lay.action_channels]
    lines.append(f"  task     '{task}' <- {task_source}")
    lines += [f"  {line}" for line in extra]
    return "\n".join(lines)
