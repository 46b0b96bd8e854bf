"""Load a fine-tuned LeRobot 0.4.2 GR00T N1.5 checkpoint offline and turn an observation into a chunk.

The model runs through LeRobot's own code (its preprocessor pipeline, GrootPolicy.predict_action_chunk); what
we change is how it is built (from a local config, strictly loaded, attention chosen at load time) and how the
chunk is de-normalized (all 16 rows, with the checkpoint's min/max, in robot units).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from groot_ros.layout import Layout, stats_problems
from groot_ros.model_assets import (
    AssetError,
    AttentionChoice,
    attention_override,
    choose_attention,
    find_base_config,
    find_eagle_assets,
    stage_processor_dir,
)
from groot_ros.normalization import MinMax
from groot_ros.observation import Observation

log = logging.getLogger(__name__)

CHECKPOINT_FILES = ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json")
PACK_STEP = "groot_pack_inputs_v3"
UNNORMALIZE_STEP = "groot_action_unpack_unnormalize_v1"
EAGLE_STEPS = ("groot_eagle_encode_v3", "groot_eagle_collate_v3")
DTYPES = ("float32", "bfloat16")


class CheckpointError(ValueError):
    """The checkpoint cannot run with this layout or environment; the message lists every problem."""


class ObservationError(ValueError):
    """An observation the model must not see (wrong dims, NaN, unknown camera, bad image)."""


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


@dataclass
class PredictTimings:
    preprocess_ms: float = 0.0
    model_ms: float = 0.0
    denormalize_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.model_ms + self.denormalize_ms


def _step_state_file(checkpoint: Path, processor_json: str, registry_name: str) -> Path | None:
    data = json.loads((checkpoint / processor_json).read_text())
    for step in data.get("steps", []):
        if step.get("registry_name") == registry_name and step.get("state_file"):
            return checkpoint / step["state_file"]
    return None


def _read_minmax(path: Path | None, key: str, problems: list[str], where: str) -> MinMax | None:
    from safetensors.numpy import load_file

    if path is None or not path.is_file():
        problems.append(f"{where}: no statistics file (dataset min/max) in the checkpoint")
        return None
    tensors = load_file(str(path))
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
    config = json.loads((path / "config.json").read_text())
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
        state = _read_minmax(_step_state_file(path, "policy_preprocessor.json", PACK_STEP),
                             "observation.state", problems, "preprocessor")
        action = _read_minmax(_step_state_file(path, "policy_postprocessor.json", UNNORMALIZE_STEP),
                              "action", problems, "postprocessor")
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


def build_groot_policy(base_config_json: Path, processor_dir: Path, attention: AttentionChoice,
                       policy_config: Any) -> Any:
    """A GrootPolicy whose GR00T model is built from a local config (random weights, nothing downloaded)."""
    from lerobot.policies.groot.groot_n1 import GR00TN15, GR00TN15Config
    from lerobot.policies.groot.modeling_groot import GrootPolicy

    raw = json.loads(base_config_json.read_text())
    raw.setdefault("backbone_cfg", {})
    raw["backbone_cfg"] = dict(raw["backbone_cfg"], tokenizer_assets_repo=str(processor_dir),
                               use_flash_attention=attention.implementation == "flash_attention_2",
                               load_bf16=False)

    class LocalGrootPolicy(GrootPolicy):
        def _create_groot_model(self):  # replaces the hub download of the base model
            model = GR00TN15(GR00TN15Config(**raw), local_model_path=str(base_config_json.parent))
            model.compute_dtype = "bfloat16" if self.config.use_bf16 else model.compute_dtype
            model.config.compute_dtype = model.compute_dtype
            return model

    LocalGrootPolicy.__name__ = GrootPolicy.__name__
    chatter = io.StringIO()  # LeRobot prints its build steps; keep them for -v instead of the console
    with attention_override(attention.implementation), contextlib.redirect_stdout(chatter):
        policy = LocalGrootPolicy(policy_config)
    for line in chatter.getvalue().splitlines():
        log.debug("lerobot: %s", line)
    return policy


def load_policy_config(checkpoint: Path, device: str, dtype: str, processor_dir: Path) -> Any:
    from lerobot.configs.policies import PreTrainedConfig

    config = PreTrainedConfig.from_pretrained(str(checkpoint))
    config.device = device
    config.use_bf16 = dtype == "bfloat16"
    config.tokenizer_assets_repo = str(processor_dir)
    return config


class GrootRuntime:
    """A loaded checkpoint: `predict_chunk(observation)` -> (16, action_dim) in robot units."""

    def __init__(self, *, policy: Any, preprocessor: Any, info: LoadedCheckpointInfo, layout: Layout,
                 device: str, dtype: str, attention: AttentionChoice, eagle_assets: Path, base_config: Path):
        self.policy = policy
        self.preprocessor = preprocessor
        self.info = info
        self.layout = layout
        self.device = device
        self.dtype = dtype
        self.attention = attention
        self.eagle_assets = eagle_assets
        self.base_config = base_config
        assert info.stats is not None
        self.stats: CheckpointStats = info.stats
        self.last_timings = PredictTimings()
        self.engine: Any = None  # groot_ros.fast_inference.FastGroot once enable_fast_path() is called

    def enable_fast_path(self, options: Any = None) -> None:
        """Predict through groot_ros.fast_inference (same outputs within tolerance, checked by its tests)."""
        from groot_ros.fast_inference import FastOptions, optimize_runtime

        self.engine = optimize_runtime(self, options or FastOptions())

    @classmethod
    def load(cls, checkpoint: str | Path, layout: Layout, *, base_config: str | Path | None = None,
             eagle_assets: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
             attention: str = "auto", fast: bool = False) -> "GrootRuntime":
        """Validates everything first and reports all problems at once; then builds and strictly loads."""
        checkpoint = Path(checkpoint)
        problems: list[str] = []
        if dtype not in DTYPES:
            problems.append(f"dtype must be one of {DTYPES}, got '{dtype}'")
        if not (device == "cpu" or device.startswith("cuda")):
            problems.append(f"device must be 'cpu' or 'cuda[:N]', got '{device}'")
        info = inspect_checkpoint(checkpoint, problems)
        base_json = assets = None
        if info is not None:
            problems += stats_problems(layout, info.state_dim, info.action_dim, info.camera_keys, info.embodiment_tag)
            try:
                base_json = find_base_config(checkpoint, base_config, info.config.get("base_model_path"))
            except AssetError as exc:
                problems.append(str(exc))
            try:
                assets = find_eagle_assets(checkpoint, eagle_assets, info.config.get("tokenizer_assets_repo"))
            except AssetError as exc:
                problems.append(str(exc))
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                problems.append(f"device '{device}' requested but CUDA is not available on this machine")
        if problems:
            raise CheckpointError(f"cannot load GR00T checkpoint {checkpoint}:\n  - " + "\n  - ".join(problems))
        assert info is not None and base_json is not None and assets is not None
        choice = choose_attention(device, attention)
        processor_dir = stage_processor_dir(assets)
        t0 = time.perf_counter()
        policy_config = load_policy_config(checkpoint, device, dtype, processor_dir)
        policy = build_groot_policy(base_json, processor_dir, choice, policy_config)
        _load_weights_strict(policy, checkpoint / "model.safetensors")
        import torch

        policy.to(device=device, dtype=torch.bfloat16 if dtype == "bfloat16" else torch.float32)
        policy.eval()
        preprocessor = _load_preprocessor(checkpoint, device, processor_dir)
        log.info("loaded %s on %s/%s with %s attention (%s) in %.1f s", checkpoint, device, dtype,
                 choice.implementation, choice.reason, time.perf_counter() - t0)
        runtime = cls(policy=policy, preprocessor=preprocessor, info=info, layout=layout, device=device, dtype=dtype,
                      attention=choice, eagle_assets=assets, base_config=base_json)
        if fast:
            runtime.enable_fast_path()
        return runtime

    def check_observation(self, obs: Observation) -> None:
        problems = []
        state = np.asarray(obs.state)
        if state.shape != (self.layout.state_dim,):
            problems.append(f"state has shape {state.shape}, layout '{self.layout.name}' needs ({self.layout.state_dim},)")
        elif not np.all(np.isfinite(state)):
            bad = [self.layout.state_names[i] for i in np.flatnonzero(~np.isfinite(state))]
            problems.append(f"state has NaN/inf in {bad}")
        expected = set(self.info.camera_keys)
        unknown = sorted(set(obs.images) - expected)
        absent = sorted(expected - set(obs.images))
        if unknown:
            problems.append(f"unknown camera keys {unknown}; the checkpoint takes {sorted(expected)}")
        if absent:
            problems.append(f"missing camera images {absent}")
        for key in sorted(expected & set(obs.images)):
            img = obs.images[key]
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
                problems.append(f"image '{key}' must be uint8 HxWx3, got {desc}")
        if problems:
            raise ObservationError("; ".join(problems))

    def batch_for(self, obs: Observation) -> dict[str, Any]:
        import torch

        batch: dict[str, Any] = {"observation.state": torch.as_tensor(np.asarray(obs.state, dtype=np.float32))}
        for key in self.info.camera_keys:
            batch[key] = torch.from_numpy(self.trained_size(key, obs.images[key])).permute(2, 0, 1)
        batch["task"] = obs.task
        return batch

    def trained_size(self, key: str, img: np.ndarray) -> np.ndarray:
        """The image at the resolution the checkpoint declares for that camera (the dataset's).

        LeRobot stacks all cameras into one array, so they must agree in size; and the model was trained
        on the dataset's resolution. Always returns a writable copy (ROS message buffers are read-only).
        """
        import cv2

        shape = (self.info.config["input_features"][key].get("shape") or [3, 0, 0])
        h, w = int(shape[1]), int(shape[2])
        if h > 0 and w > 0 and img.shape[:2] != (h, w):
            return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return np.array(img, copy=True)

    def _predict_fast(self, obs: Observation, seed: int | None) -> Any:
        marks: dict[str, float] = {}

        class Marks:
            def mark(self, stage: str) -> None:
                marks[stage] = time.perf_counter()

        t0 = time.perf_counter()
        prediction = self.engine.predict(obs, seed, timer=Marks())
        self.last_timings = PredictTimings(preprocess_ms=(marks["preprocess"] - t0) * 1e3,
                                           model_ms=(marks["action_head"] - marks["preprocess"]) * 1e3,
                                           denormalize_ms=(marks["denormalize"] - marks["action_head"]) * 1e3)
        return prediction

    def predict_normalized(self, obs: Observation, seed: int | None = None) -> np.ndarray:
        """The model's raw chunk (chunk_size, action_dim) in [-1, 1] space."""
        import torch

        if self.engine is not None:
            return self._predict_fast(obs, seed).normalized
        self.check_observation(obs)
        t0 = time.perf_counter()
        batch = self.preprocessor(self.batch_for(obs))
        t1 = time.perf_counter()
        with torch.random.fork_rng(devices=[torch.device(self.device)] if self.device.startswith("cuda") else []):
            if seed is not None:
                torch.manual_seed(seed)
            chunk = self.policy.predict_action_chunk(batch)
            out = chunk[0].float().cpu().numpy()
        t2 = time.perf_counter()
        self.last_timings = PredictTimings(preprocess_ms=(t1 - t0) * 1e3, model_ms=(t2 - t1) * 1e3)
        return out

    def predict_chunk(self, obs: Observation, seed: int | None = None) -> np.ndarray:
        """(chunk_size, action_dim) in robot units: every row de-normalized with the checkpoint's min/max."""
        if self.engine is not None:
            return self._predict_fast(obs, seed).chunk
        normalized = self.predict_normalized(obs, seed)
        t0 = time.perf_counter()
        chunk = self.stats.action.denormalize(normalized)
        self.last_timings.denormalize_ms = (time.perf_counter() - t0) * 1e3
        return chunk


def _load_weights_strict(policy: Any, weights: Path) -> None:
    from safetensors.torch import load_model

    try:
        missing, unexpected = load_model(policy, str(weights), strict=False, device="cpu")
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"weights in {weights} do not fit the model built from the base config: {exc}") from exc
    if missing or unexpected:
        def head(keys: list[str]) -> str:
            return ", ".join(sorted(keys)[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        raise CheckpointError(
            f"weights in {weights} do not match the model built from the base config: "
            f"{len(missing)} missing keys [{head(list(missing))}], "
            f"{len(unexpected)} unexpected keys [{head(list(unexpected))}]. "
            "Is the base config (--base-config) the one this checkpoint was fine-tuned from?"
        )


def _load_preprocessor(checkpoint: Path, device: str, processor_dir: Path) -> Any:
    from lerobot.processor import PolicyProcessorPipeline

    present = {s.get("registry_name") for s in json.loads((checkpoint / "policy_preprocessor.json").read_text())["steps"]}
    overrides: dict[str, Mapping[str, Any]] = {"device_processor": {"device": device}}
    overrides.update({name: {"tokenizer_assets_repo": str(processor_dir)} for name in EAGLE_STEPS})
    overrides = {k: v for k, v in overrides.items() if k in present}
    return PolicyProcessorPipeline.from_pretrained(
        str(checkpoint), config_filename="policy_preprocessor.json", overrides=overrides, local_files_only=True
    )
