"""A random-weight GR00T N1.5 checkpoint with the real model's dimensions, written without any model hub.

Timing does not depend on what the weights or tokens mean, only on the shapes: the base config and the Eagle
config (config/groot_n15_*.json) carry the published dimensions, the tokenizer is the one trained locally for
the tiny checkpoint (its vocabulary padded by the config's vocab_size), and the checkpoint directory has the
same files as make_tiny_checkpoint writes, so everything downstream loads it like a fine-tuned one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from groot_ros.core.layout import Layout
from groot_ros.core.paths import config_dir
from groot_ros.policy.tiny import (
    IMAGE_SIZE as TINY_IMAGE_SIZE,
    TinyCheckpoint,
    build_policy,
    default_stats,
    policy_config,
    save_checkpoint,
    tiny_base_config,
    write_eagle_assets,
    write_model_files,
)

BASE_CONFIG_FILE = "groot_n15_base_config.json"
EAGLE_CONFIG_FILE = "groot_n15_eagle_config.json"
SIZES = ("tiny", "full")


@dataclass(frozen=True)
class ModelSize:
    """What differs between the tiny and the full-size benchmark model."""

    name: str
    image_size: int
    base_config: Callable[[dict[str, int]], dict]
    write_assets: Callable[[Path], dict[str, int]]


def full_base_config(vocab_info: dict[str, int] | None = None) -> dict:
    """The GR00T N1.5 base config (backbone_cfg, action_head_cfg) at full size; tokenizer-independent."""
    return json.loads((config_dir() / BASE_CONFIG_FILE).read_text())


def full_eagle_config(vocab_info: dict[str, int]) -> dict:
    """The full-size Eagle config with the special-token ids of the tokenizer it will be used with."""
    config = {k: v for k, v in json.loads((config_dir() / EAGLE_CONFIG_FILE).read_text()).items()
              if not k.startswith("_comment")}
    if vocab_info["vocab_size"] > config["text_config"]["vocab_size"]:
        raise ValueError("the tokenizer's vocabulary is larger than the full-size model's vocab_size")
    config["image_token_index"] = vocab_info["<IMG_CONTEXT>"]
    config["text_config"] = dict(config["text_config"], bos_token_id=vocab_info["<|endoftext|>"],
                                 eos_token_id=vocab_info["<|im_end|>"])
    return config


def tokens_per_tile(eagle: dict) -> int:
    """Image tokens the LLM sees per tile: the processor must insert exactly this many <IMG_CONTEXT> tokens."""
    vision = eagle["vision_config"]
    patches = (eagle.get("force_image_size") or vision["image_size"]) // vision["patch_size"]
    shuffle = eagle["downsample_ratio"] ** 2 if eagle.get("use_pixel_shuffle", True) else 1.0
    return int(patches**2 * shuffle)


def write_full_eagle_assets(directory: Path) -> dict[str, int]:
    """The tiny checkpoint's tokenizer files with the full-size Eagle model and processor configs."""
    vocab_info = write_eagle_assets(directory)
    eagle = full_eagle_config(vocab_info)
    image_size = eagle["force_image_size"]
    _update_json(directory / "config.json", lambda _: eagle)
    _update_json(directory / "preprocessor_config.json",
                 lambda cfg: dict(cfg, size={"height": image_size, "width": image_size}))
    _update_json(directory / "processor_config.json", lambda cfg: dict(cfg, tokens_per_tile=tokens_per_tile(eagle)))
    return vocab_info


def _update_json(path: Path, change: Callable[[dict], dict]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text())), indent=2, sort_keys=True) + "\n")


MODEL_SIZES = {
    "tiny": ModelSize("tiny", TINY_IMAGE_SIZE, tiny_base_config, write_eagle_assets),
    "full": ModelSize("full", 224, full_base_config, write_full_eagle_assets),
}


def _prepare(ckpt: TinyCheckpoint, layout: Layout, size: ModelSize) -> Any:
    """Writes the Eagle assets and the base config; returns the GrootConfig of a policy for `layout`."""
    write_model_files(ckpt, size.write_assets, size.base_config)
    return policy_config(layout, size.image_size)


def write_checkpoint(out: str | Path, layout: Layout, size: ModelSize, *, seed: int = 0,
                     save_dtype: str = "float32") -> TinyCheckpoint:
    """Writes OUT/pretrained_model, OUT/base_model/config.json and OUT/eagle_assets/ for a random-weight model.

    `save_dtype="bfloat16"` halves the full model's file (about 5 GB instead of 10 GB); the loader casts the
    weights to the parameters' dtype, so a bf16 file still runs the stock path in fp32.
    """
    ckpt = TinyCheckpoint(Path(out).resolve())
    save_checkpoint(ckpt, _prepare(ckpt, layout, size), default_stats(layout), seed=seed, save_dtype=save_dtype)
    return ckpt


def count_parameters(size: ModelSize, layout: Layout, scratch: Path) -> dict[str, int]:
    """Parameters per part, from a model built on the meta device (no memory, no weights, seconds)."""
    import torch

    ckpt = TinyCheckpoint(Path(scratch).resolve())
    config = _prepare(ckpt, layout, size)
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)  # the action head's Beta checks values
    try:
        with torch.device("meta"):
            policy = build_policy(ckpt, config)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
    model: Any = policy._groot_model
    eagle = model.backbone.eagle_model
    parts = {"vision": eagle.vision_model, "connector": eagle.mlp1, "llm": eagle.language_model.model,
             "action_head": model.action_head}
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
    lm_head = eagle.language_model.lm_head.weight
    counts["lm_head"] = 0 if lm_head is eagle.language_model.model.embed_tokens.weight else lm_head.numel()
    counts["total"] = sum(p.numel() for p in policy.parameters())
    return counts
