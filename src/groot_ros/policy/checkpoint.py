"""What a LeRobot GR00T checkpoint declares, read from its files without building the model.

config.json gives the features (state/action dims, camera keys, embodiment); the processor safetensors give the
dataset min/max that de-normalize the chunk. Every problem is appended to a list so the caller reports them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.core.normalization import MinMax

CHECKPOINT_FILES = ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json")
PACK_STEP = "groot_pack_inputs_v3"
UNNORMALIZE_STEP = "groot_action_unpack_unnormalize_v1"


class CheckpointError(ValueError):
    """The checkpoint cannot run with this layout or environment; the message lists every problem."""


@dataclass(frozen=True)
class CheckpointStats:
    state: MinMax
    action: MinMax


@dataclass(frozen=True)
class LoadedCheckpointInfo:
    """What the checkpoint declares, read without building the model."""

    path: Path
    config: dict
    state_dim: int | None
    action_dim: int | None
    camera_keys: list[str]
    embodiment_tag: str | None
    chunk_size: int
    stats: CheckpointStats | None


def read_json(path: Path) -> dict:
    """A JSON file of a checkpoint or dataset; a damaged one is a CheckpointError naming the file and the spot."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable JSON file ({type(exc).__name__}: {exc}): re-copy it from "
                              f"the training machine") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _step_state_file(checkpoint: Path, processor_json: str, registry_name: str) -> Path | None:
    data = read_json(checkpoint / processor_json)
    for step in data.get("steps", []):
        if step.get("registry_name") == registry_name and step.get("state_file"):
            return checkpoint / step["state_file"]
    return None


def _read_minmax(path: Path | None, key: str, problems: list[str], where: str) -> MinMax | None:
    from safetensors.numpy import load_file

    if path is None or not path.is_file():
        problems.append(f"{where}: no statistics file (dataset min/max) in the checkpoint")
        return None
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
        problems.append(f"{where}: {path} is not a readable safetensors file: {exc}")
        return None
    lo, hi = tensors.get(f"{key}.min"), tensors.get(f"{key}.max")
    if lo is None or hi is None:
        problems.append(f"{where}: min/max for '{key}' missing from {path.name} (has: {sorted(tensors)})")
        return None
    try:
        return MinMax(lo.astype(np.float64).reshape(-1), hi.astype(np.float64).reshape(-1))
    except ValueError as exc:
        problems.append(f"{where}: {key} statistics unusable: {exc}")
        return None


def inspect_checkpoint(checkpoint: str | Path, problems: list[str]) -> LoadedCheckpointInfo | None:
    """Reads config and statistics of a checkpoint directory; appends what is wrong to `problems`."""
    path = Path(checkpoint)
    if not path.is_dir():
        problems.append(f"checkpoint directory {path} does not exist")
        return None
    missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        problems.append(f"checkpoint {path} lacks {', '.join(missing)} (expected a LeRobot pretrained_model/ dir)")
        if "config.json" in missing:
            return None
    try:
        config = read_json(path / "config.json")
    except CheckpointError as exc:
        problems.append(str(exc))
        return None
    if config.get("type") != "groot":
        problems.append(f"checkpoint policy type is '{config.get('type')}', expected 'groot'")

    def dim(features: dict, key: str) -> int | None:
        shape = (features.get(key) or {}).get("shape")
        return int(shape[0]) if shape else None

    inputs, outputs = config.get("input_features", {}), config.get("output_features", {})
    cameras = sorted(k for k, v in inputs.items() if v.get("type") == "VISUAL")
    stats = None
    if "policy_preprocessor.json" in missing or "policy_postprocessor.json" in missing:
        problems.append("without the processor files there are no min/max statistics for observation.state and action")
    else:
        try:
            state = _read_minmax(_step_state_file(path, "policy_preprocessor.json", PACK_STEP),
                                 "observation.state", problems, "preprocessor")
            action = _read_minmax(_step_state_file(path, "policy_postprocessor.json", UNNORMALIZE_STEP),
                                  "action", problems, "postprocessor")
        except CheckpointError as exc:
            problems.append(str(exc))
            state = action = None
        if state is not None and action is not None:
            stats = CheckpointStats(state, action)
    info = LoadedCheckpointInfo(
        path=path,
        config=config,
        state_dim=dim(inputs, "observation.state"),
        action_dim=dim(outputs, "action"),
        camera_keys=cameras,
        embodiment_tag=config.get("embodiment_tag"),
        chunk_size=min(int(config.get("chunk_size", 16)), 16),
        stats=stats,
    )
    if stats is not None:
        if info.state_dim is not None and stats.state.dim != info.state_dim:
            problems.append(f"state statistics have {stats.state.dim} dims, checkpoint state has {info.state_dim}")
        if info.action_dim is not None and stats.action.dim != info.action_dim:
            problems.append(f"action statistics have {stats.action.dim} dims, checkpoint action has {info.action_dim}")
    return info


def _robot_bounds(layout: Layout) -> tuple[dict[int, tuple[float, float]], dict[int, tuple[float, float]]]:
    """Per state and action dimension, the robot's range where the robot config gives one (arms: URDF, claws,
    torso command offset and pitch); dims without one (IMU, absolute torso height) are left out."""
    robot = layout.robot
    channel_bounds = {"arm": [tuple(r) for r in robot.arm_limits], "claw": [robot.claw_limits] * 2,
                      "torso": [robot.torso_z_limits, robot.torso_pitch_limits]}
    action, offset = {}, 0
    for comp in layout.action:
        for k, i in enumerate(comp.indices):
            action[offset + k] = channel_bounds[comp.channel][i]
        offset += comp.dim
    state, offset = {}, 0
    for comp in layout.state:
        rows = (channel_bounds["arm"] if comp.joint_vector else
                [robot.claw_limits] * comp.dim if comp.stream == "claws" else None)
        if rows is not None:
            state.update({offset + k: rows[k] for k in range(comp.dim)})
        offset += comp.dim
    return state, action


def minmax_problems(layout: Layout, stats: CheckpointStats) -> list[str]:
    """Statistics that cannot be the dataset's: min > max, or values far beyond the robot's range (more than the
    range's own width outside it). They would de-normalize every chunk into nonsense the envelope then clips,
    so they are a start-up error naming the dims."""
    problems = []
    state_bounds, action_bounds = _robot_bounds(layout)
    for what, minmax, names, bounds in (("state", stats.state, layout.state_names, state_bounds),
                                        ("action", stats.action, layout.action_names, action_bounds)):
        if minmax.dim != len(names):
            continue  # a dim mismatch is reported by stats_problems
        inverted = [f"{n} (min {lo:g} > max {hi:g})" for n, lo, hi in zip(names, minmax.min, minmax.max) if lo > hi]
        if inverted:
            problems.append(f"{what} statistics with min > max: {', '.join(inverted)}")
        far = []
        for i, (lo, hi) in bounds.items():
            width = max(hi - lo, 1e-3)
            bad = [f"{k} {v:g}" for k, v in (("min", minmax.min[i]), ("max", minmax.max[i]))
                   if not lo - width <= v <= hi + width]
            if bad:
                far.append(f"{names[i]} {' '.join(bad)} (robot range {lo:g}..{hi:g})")
        if far:
            problems.append(f"{what} statistics far beyond the robot's range: {', '.join(far)}")
    return problems
