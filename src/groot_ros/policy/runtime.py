"""Load a fine-tuned LeRobot 0.4.2 GR00T N1.5 checkpoint offline, ready to predict through an engine.

The model is LeRobot's own (its GrootPolicy, its preprocessor pipeline); what we change is how it is built (from
a local config, strictly loaded, attention chosen and verified at load time) and how the chunk is de-normalized
(all 16 rows, with the checkpoint's min/max, in robot units). LoadedCheckpoint is the loaded model and what it
declares; the engines take it (policy/stock.py: LeRobot's path; policy/fast.py: ours). GrootRuntime is the
ChunkPolicy (policy/base.py) that holds one loaded checkpoint and the engine it predicts through.
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

from groot_ros.core.layout import Layout, stats_problems
from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.action_heads import ActionHeadSpec, HeadError, detect_head, head_problems, read_weight_shapes
from groot_ros.policy.assets import AssetError, find_base_config, find_eagle_assets, stage_processor_dir
from groot_ros.policy.attention import AttentionChoice, attention_override, choose_attention, verify_attention
from groot_ros.policy.base import ChunkPolicy, PolicyInputs, Prediction, check_observation
from groot_ros.policy.checkpoint import (CheckpointError, CheckpointStats, LoadedCheckpointInfo, inspect_checkpoint,
                                        minmax_problems)
from groot_ros.policy.rtc import RtcOptions
from groot_ros.policy.stock import StockEngine

log = logging.getLogger(__name__)

EAGLE_STEPS = ("groot_eagle_encode_v3", "groot_eagle_collate_v3")
DTYPES = ("float32", "bfloat16")


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
        def _create_groot_model(self, *_args: Any, **_kwargs: Any):  # replaces the hub download of the base model
            # (the fork's dev branch passes an rtc_processor here; the model we build takes none)
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
    built = verify_attention(policy, attention.implementation)
    log.debug("attention per sub-model: %s", built)
    return policy


# GrootConfig fields of our users' fork (dev branch) that stock LeRobot 0.4.2 does not have; none changes inference.
FORK_CONFIG_FIELDS = ("rtc_config",)


def load_policy_config(checkpoint: Path, device: str, dtype: str, processor_dir: Path) -> Any:
    """The checkpoint's GrootConfig, parsed by LeRobot; the fork's extra fields are set aside (logged), any other
    field stock LeRobot does not know is an error naming it."""
    import dataclasses
    import tempfile

    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.groot.configuration_groot import GrootConfig

    raw = json.loads((checkpoint / "config.json").read_text())
    known = {f.name for f in dataclasses.fields(GrootConfig)} | {"type"}
    extra = sorted(set(raw) - known)
    unknown = [k for k in extra if k not in FORK_CONFIG_FIELDS]
    if unknown:
        raise CheckpointError(f"{checkpoint / 'config.json'} has fields LeRobot 0.4.2's GrootConfig does not know: "
                              f"{unknown}")
    with tempfile.TemporaryDirectory() as tmp:
        source = checkpoint
        if extra:
            log.info("%s: not used by stock LeRobot: %s", checkpoint / "config.json",
                     ", ".join(f"{k}={raw[k]!r}" for k in extra))
            source = Path(tmp)
            (source / "config.json").write_text(json.dumps({k: v for k, v in raw.items() if k not in extra}))
        config = PreTrainedConfig.from_pretrained(str(source))
    config.device = device
    config.use_bf16 = dtype == "bfloat16"
    config.tokenizer_assets_repo = str(processor_dir)
    return config


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A fine-tuned checkpoint built and strictly loaded: LeRobot's GrootPolicy and preprocessor, what the
    checkpoint declares, and how it was loaded. The engines (stock.py, fast.py) predict from it; it knows none."""

    policy: Any
    preprocessor: Any
    info: LoadedCheckpointInfo
    layout: Layout
    device: str
    dtype: str
    attention: AttentionChoice
    eagle_assets: Path
    base_config: Path
    head: ActionHeadSpec

    @property
    def stats(self) -> CheckpointStats:
        assert self.info.stats is not None  # load() refuses a checkpoint without them
        return self.info.stats

    @property
    def expects(self) -> PolicyInputs:
        return PolicyInputs(state_dim=self.layout.state_dim, action_dim=self.layout.action_dim,
                            camera_keys=tuple(self.info.camera_keys), chunk_size=self.info.chunk_size)

    @classmethod
    def load(cls, checkpoint: str | Path, layout: Layout, *, base_config: str | Path | None = None,
             eagle_assets: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
             attention: str = "auto") -> "LoadedCheckpoint":
        """Validates everything first and reports all problems at once; then builds and strictly loads."""
        checkpoint = Path(checkpoint)
        problems: list[str] = []
        if dtype not in DTYPES:
            problems.append(f"dtype must be one of {DTYPES}, got '{dtype}'")
        if not (device == "cpu" or device.startswith("cuda")):
            problems.append(f"device must be 'cpu' or 'cuda[:N]', got '{device}'")
        info = inspect_checkpoint(checkpoint, problems)
        base_json = assets = head = None
        if info is not None:
            problems += stats_problems(layout, info.state_dim, info.action_dim, info.camera_keys, info.embodiment_tag)
            problems += minmax_problems(layout, info.stats) if info.stats is not None else []
            head = _detect_head(checkpoint / "model.safetensors", info.action_dim, problems)
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
        assert info is not None and base_json is not None and assets is not None and head is not None
        choice = choose_attention(device, attention)
        processor_dir = stage_processor_dir(assets)
        t0 = time.perf_counter()
        policy_config = load_policy_config(checkpoint, device, dtype, processor_dir)
        policy = build_groot_policy(base_json, processor_dir, choice, policy_config)
        from groot_ros.policy.head_modules import install_head

        install_head(policy, head)
        _load_weights_strict(policy, checkpoint / "model.safetensors", head)
        import torch

        policy.to(device=device, dtype=torch.bfloat16 if dtype == "bfloat16" else torch.float32)
        policy.eval()
        preprocessor = _load_preprocessor(checkpoint, device, processor_dir)
        log.info("loaded %s on %s/%s with %s attention (%s) in %.1f s; action head %s", checkpoint, device, dtype,
                 choice.implementation, choice.reason, time.perf_counter() - t0, head.describe())
        return cls(policy=policy, preprocessor=preprocessor, info=info, layout=layout, device=device, dtype=dtype,
                   attention=choice, eagle_assets=assets, base_config=base_json, head=head)

    def check_observation(self, obs: Observation) -> None:
        check_observation(obs, self.layout.state_names, tuple(self.info.camera_keys))

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
        from groot_ros.core.images import resize_area

        shape = (self.info.config["input_features"][key].get("shape") or [3, 0, 0])
        return resize_area(img, (shape[1], shape[2]))


class GrootRuntime(ChunkPolicy):
    """A loaded checkpoint and the engine that predicts from it: what the tools and the node hold.

    `predict_chunk(observation)` -> (16, action_dim) in robot units. What the checkpoint declares (layout, info,
    stats, device, dtype, attention, head, policy, preprocessor) reads through from `checkpoint`.
    """

    def __init__(self, checkpoint: LoadedCheckpoint, engine: ChunkPolicy | None = None):
        self.checkpoint = checkpoint
        self.engine: ChunkPolicy = engine or StockEngine(checkpoint)
        self._rtc = RtcOptions()

    @property
    def rtc(self) -> RtcOptions:
        """How a real-time-chunking prefix is honoured (policy/rtc.py), by whichever engine predicts."""
        return self._rtc

    @rtc.setter
    def rtc(self, options: RtcOptions) -> None:
        self._rtc = options
        self.engine.rtc = options

    def __getattr__(self, name: str) -> Any:
        if name == "checkpoint":  # not yet set (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.checkpoint, name)

    @classmethod
    def load(cls, checkpoint: str | Path, layout: Layout, *, base_config: str | Path | None = None,
             eagle_assets: str | Path | None = None, device: str = "cpu", dtype: str = "float32",
             attention: str = "auto", fast: bool = False) -> "GrootRuntime":
        """LoadedCheckpoint.load (every problem reported at once, then a strict load), predicting through the
        stock engine, or with `fast` through ours."""
        runtime = cls(LoadedCheckpoint.load(checkpoint, layout, base_config=base_config, eagle_assets=eagle_assets,
                                            device=device, dtype=dtype, attention=attention))
        if fast:
            runtime.enable_fast_path()
        return runtime

    def enable_fast_path(self, options: Any = None) -> None:
        """Predict through groot_ros.policy.fast (same outputs within tolerance, checked by its tests)."""
        from groot_ros.policy.fast import FastOptions, fast_engine

        self.engine = fast_engine(self.checkpoint, options or FastOptions())
        self.engine.rtc = self._rtc

    @property
    def name(self) -> str:  # type: ignore[override]
        """The engine it predicts through: 'stock LeRobot' or 'groot_ros fast'."""
        return self.engine.name

    @property
    def expects(self) -> PolicyInputs:
        return self.checkpoint.expects

    def predict(self, obs: Observation, seed: int | None = None, prefix: ChunkPrefix | None = None) -> Prediction:
        return self.engine.predict(obs, seed, prefix)

    def reset(self) -> None:
        self.engine.reset()


def _detect_head(weights: Path, action_dim: int | None, problems: list[str]) -> ActionHeadSpec | None:
    """The action head the weights carry (policy/action_heads.py), checked against the declared action dims."""
    if not weights.is_file():
        return None  # inspect_checkpoint has reported it
    try:
        head = detect_head(read_weight_shapes(weights))
    except HeadError as exc:
        problems.append(f"{weights}: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
        problems.append(f"{weights} is not a readable safetensors file: {exc}")
        return None
    problems += head_problems(head, action_dim)
    return head


def _load_weights_strict(policy: Any, weights: Path, head: ActionHeadSpec) -> None:
    """Every weight in the file must land in the model and every model weight must come from the file, except the
    head's known training-only weights (listed in `head.ignored`)."""
    from safetensors.torch import load_model

    try:
        missing, unexpected = load_model(policy, str(weights), strict=False, device="cpu")
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"weights in {weights} do not fit the model built from the base config: {exc}") from exc
    unexpected = [k for k in unexpected if k not in head.ignored]
    if head.ignored:
        log.info("not loaded (training-only): %s", ", ".join(head.ignored))
    if missing or unexpected:
        def head_of(keys: list[str]) -> str:
            return ", ".join(sorted(keys)[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")

        raise CheckpointError(
            f"weights in {weights} do not match the model built from the base config (action head: "
            f"{head.describe()}): {len(missing)} missing keys [{head_of(list(missing))}], "
            f"{len(unexpected)} unexpected keys [{head_of(list(unexpected))}]. "
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
