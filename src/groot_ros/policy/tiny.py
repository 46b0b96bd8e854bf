"""A tiny GR00T-architecture checkpoint, made locally, that loads exactly like a real fine-tuned one.

Same architecture (SigLIP + Qwen3 Eagle backbone, VL self-attention, DiT flow-matching head), same files
(saved through LeRobot's own save_pretrained for the policy and both processor pipelines), same neighbours
(base_model/config.json and eagle_assets/ beside pretrained_model/), only ~1M random parameters and a
byte-level BPE tokenizer trained here. Tests, the demo, training and the benchmarks use it, and `predict`
and the benches feed it (or any checkpoint) `synthetic_observation`; nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from groot_ros.core.layout import Layout
from groot_ros.core.observation import DEFAULT_TASK, Observation
from groot_ros.policy.assets import BASE_MODEL_DIRNAME, EAGLE_ASSETS_DIRNAME, stage_processor_dir
from groot_ros.policy.attention import choose_attention

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>")
IMAGE_SIZE = 56
PATCH_SIZE = 14
DOWNSAMPLE = 0.5
TOKENS_PER_TILE = int((IMAGE_SIZE // PATCH_SIZE) ** 2 * DOWNSAMPLE**2)
LLM_HIDDEN = 32
VOCAB_TARGET = 384

# Renders each image item as <image-N> (the Eagle processor expands it to <img><IMG_CONTEXT>...</img>).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}\n"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- set ns = namespace(n=0) -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{%- set ns.n = ns.n + 1 -%}<image-{{ ns.n }}>"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
)

_CORPUS = [
    "Depalletize the boxes: pick the top box with both claws and place it on the conveyor.",
    "Pick up the box with both hands and place it on the shelf.",
    "Move the arms to the box, close the claws, lift with the torso, move and open the claws.",
    "Perform the task.",
    "['perform the task']",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;!?'\"[]()-_/",
]


@dataclass(frozen=True)
class TinyCheckpoint:
    root: Path

    @property
    def pretrained_model(self) -> Path:
        return self.root / "pretrained_model"

    @property
    def base_model(self) -> Path:
        return self.root / BASE_MODEL_DIRNAME

    @property
    def eagle_assets(self) -> Path:
        return self.root / EAGLE_ASSETS_DIRNAME


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_eagle_assets(directory: Path) -> dict[str, int]:
    """Tokenizer, processor and tiny Eagle config files: every file LeRobot's Eagle cache expects."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_TARGET, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = Qwen2TokenizerFast(tokenizer_object=bpe, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", additional_special_tokens=list(SPECIAL_TOKENS[1:]))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(directory))
    vocab = bpe.get_vocab()
    ids = {tok: vocab[tok] for tok in SPECIAL_TOKENS}
    # The slow-tokenizer files (vocab.json, merges.txt) and the separate JSONs the Eagle cache lists.
    model_files = bpe.model.save(str(directory))
    assert {Path(p).name for p in model_files} == {"vocab.json", "merges.txt"}
    _write_json(directory / "added_tokens.json", {tok: ids[tok] for tok in SPECIAL_TOKENS})
    _write_json(directory / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    vocab_size = len(vocab)
    _write_json(directory / "config.json", {
        "architectures": ["Eagle25VLForConditionalGeneration"],
        "auto_map": {"AutoConfig": "configuration_eagle2_5_vl.Eagle25VLConfig",
                     "AutoModel": "modeling_eagle2_5_vl.Eagle25VLForConditionalGeneration"},
        "model_type": "eagle_2_5_vl",
        "select_layer": -1, "downsample_ratio": DOWNSAMPLE, "use_pixel_shuffle": True, "mlp_connector_layers": 1,
        "force_image_size": IMAGE_SIZE, "dynamic_image_size": False, "use_thumbnail": False,
        "min_dynamic_tiles": 1, "max_dynamic_tiles": 1, "image_token_index": ids["<IMG_CONTEXT>"],
        "torch_dtype": "float32", "_attn_implementation": "flash_attention_2",
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
                          "num_attention_heads": 2, "num_hidden_layers": 1, "image_size": IMAGE_SIZE,
                          "patch_size": PATCH_SIZE, "num_channels": 3, "hidden_act": "gelu_pytorch_tanh",
                          "layer_norm_eps": 1e-6, "attention_dropout": 0.0},
        "text_config": {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": LLM_HIDDEN,
                        "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                        "num_hidden_layers": 2, "vocab_size": vocab_size, "max_position_embeddings": 1024,
                        "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
                        "hidden_act": "silu", "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                        "use_cache": False, "attention_bias": False, "attention_dropout": 0.0},
    })
    _write_json(directory / "generation_config.json",
                {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"]})
    _write_json(directory / "preprocessor_config.json", {
        "image_processor_type": "Eagle25VLImageProcessorFast",
        "auto_map": {"AutoImageProcessor": "image_processing_eagle2_5_vl_fast.Eagle25VLImageProcessorFast",
                     "AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor"},
        "processor_class": "Eagle25VLProcessor",
        "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}, "do_resize": True, "do_rescale": True,
        "do_normalize": True, "do_convert_rgb": True, "do_pad": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3,
        "max_dynamic_tiles": 1, "min_dynamic_tiles": 1, "use_thumbnail": False,
    })
    _write_json(directory / "processor_config.json", {
        "auto_map": {"AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor"},
        "processor_class": "Eagle25VLProcessor", "tokens_per_tile": TOKENS_PER_TILE,
        "image_token": "<IMG_CONTEXT>", "video_token": "<IMG_CONTEXT>",
        "image_start_token": "<img>", "image_end_token": "</img>",
        "image_placeholder": "image", "video_placeholder": "video",
    })
    # Let AutoProcessor find the processor class from the tokenizer side too.
    tok_cfg = json.loads((directory / "tokenizer_config.json").read_text())
    tok_cfg["auto_map"] = {"AutoProcessor": "processing_eagle2_5_vl.Eagle25VLProcessor"}
    tok_cfg["processor_class"] = "Eagle25VLProcessor"
    _write_json(directory / "tokenizer_config.json", tok_cfg)
    return {"vocab_size": vocab_size, **ids}


def tiny_base_config(vocab_info: dict[str, int], head_width: int = 32) -> dict:
    """GR00T N1.5's config layout with tiny sizes; consistency rules as in the full model.

    head_width: the action head's DiT input embedding, hidden and output size (heads of 8 dims); the demo
    trains a 64-wide head (docs/tiny_training.md), tests and benchmarks use 32.
    """
    dit_head_dim = 8
    dit_heads, embed = head_width // dit_head_dim, head_width
    return {
        "architectures": ["GR00T_N1_5"],
        "model_type": "gr00t_n1_5",
        "action_horizon": 16,
        "action_dim": 32,
        "compute_dtype": "float32",
        "backbone_cfg": {"select_layer": 2, "tune_llm": False, "tune_visual": False, "reproject_vision": False,
                         "project_to_dim": None, "use_flash_attention": False, "load_bf16": False},
        "action_head_cfg": {
            "action_dim": 32, "action_horizon": 16, "add_pos_embed": True, "backbone_embedding_dim": LLM_HIDDEN,
            "hidden_size": embed, "input_embedding_dim": embed, "max_action_dim": 32, "max_state_dim": 64,
            "max_num_embodiments": 32, "num_inference_timesteps": 4, "num_target_vision_tokens": 8,
            "noise_beta_alpha": 1.5, "noise_beta_beta": 1.0, "noise_s": 0.999, "num_timestep_buckets": 1000,
            "tune_projector": True, "tune_diffusion_model": True, "use_vlln": True, "model_dtype": "float32",
            "max_seq_len": 128,
            "diffusion_model_cfg": {"attention_head_dim": dit_head_dim, "num_attention_heads": dit_heads,
                                    "cross_attention_dim": LLM_HIDDEN, "dropout": 0.0, "final_dropout": True,
                                    "interleave_self_attention": True, "norm_type": "ada_norm", "num_layers": 2,
                                    "output_dim": embed, "positional_embeddings": None},
            "vl_self_attention_cfg": {"attention_head_dim": 16, "num_attention_heads": 2, "num_layers": 1,
                                      "dropout": 0.0, "final_dropout": False, "positional_embeddings": None},
        },
    }


def _component_range(layout: Layout, comp, action: bool) -> tuple[list[float], list[float]]:
    kind = comp.channel if action else comp.stream
    if kind in ("arm", "joints"):
        rows = list(comp.indices) if action else [i - layout.robot.arm_slice[0] for i in comp.indices]
        limits = layout.robot.arm_limits[rows]
        mid, half = limits.mean(axis=1), np.minimum(0.5, (limits[:, 1] - limits[:, 0]) / 4)
        return list(mid - half), list(mid + half)
    if kind in ("claw", "claws"):
        return [0.0] * comp.dim, [100.0] * comp.dim
    if kind == "imu_lin_acc":  # m/s^2, standing: gravity on z
        return [-2.0, -2.0, 8.8], [2.0, 2.0, 10.8]
    if kind == "imu_ang_vel":  # rad/s
        return [-1.0] * comp.dim, [1.0] * comp.dim
    if not action:  # torso state: absolute base height (m) and pitch (rad)
        return [0.78, 0.0], [0.88, 0.3]
    return ([-0.1], [0.0]) if comp.name.endswith("_z") else ([0.0], [0.3])


def default_stats(layout: Layout) -> dict[str, dict[str, np.ndarray]]:
    """Plausible dataset statistics for the layout: arm ranges inside the URDF limits, claws 0..100,
    torso height around standing and small pitch. The Right_claw action has max == min, as a real dataset
    has when that claw never moved, so the de-normalization edge case is always exercised."""
    stats = {}
    for key, comps, action in (("observation.state", layout.state, False), ("action", layout.action, True)):
        lo, hi = [], []
        for comp in comps:
            c_lo, c_hi = _component_range(layout, comp, action)
            lo += c_lo
            hi += c_hi
        lo_a, hi_a = np.asarray(lo), np.asarray(hi)
        if action and "Right_claw" in layout.action_slices():
            lo_a[layout.action_slices()["Right_claw"]] = hi_a[layout.action_slices()["Right_claw"]] = 0.0
        stats[key] = {"min": lo_a.astype(np.float32), "max": hi_a.astype(np.float32),
                      "mean": ((lo_a + hi_a) / 2).astype(np.float32),
                      "std": ((hi_a - lo_a) / 4 + 1e-3).astype(np.float32)}
    return stats


def write_model_files(ckpt: TinyCheckpoint, write_assets: Callable[[Path], dict[str, int]] = write_eagle_assets,
                      base_config: Callable[[dict[str, int]], dict] = tiny_base_config) -> None:
    """OUT/eagle_assets/ and OUT/base_model/config.json (the sizes come from the two functions)."""
    vocab = write_assets(ckpt.eagle_assets)
    ckpt.base_model.mkdir(parents=True, exist_ok=True)
    _write_json(ckpt.base_model / "config.json", base_config(vocab))


def policy_config(layout: Layout, image_size: int) -> Any:
    """The GrootConfig a policy for `layout` is trained with: its features, chunk and embodiment.

    base_model_path and tokenizer_assets_repo keep LeRobot's hub ids, as users' checkpoints have them: a path of
    this machine would travel with every copy; the runtime finds base_model/ and eagle_assets/ beside it."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.groot.configuration_groot import GrootConfig

    input_features = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(layout.state_dim,))}
    for key in layout.camera_keys:
        input_features[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, image_size, image_size))
    return GrootConfig(
        input_features=input_features,
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(layout.action_dim,))},
        chunk_size=layout.chunk_size, n_action_steps=layout.chunk_size, embodiment_tag=layout.embodiment_tag,
        device="cpu", use_bf16=False, push_to_hub=False,
    )


def build_policy(ckpt: TinyCheckpoint, config: Any) -> Any:
    """A GrootPolicy with random weights from the checkpoint's base config (seed torch first)."""
    from groot_ros.policy.runtime import build_groot_policy

    return build_groot_policy(ckpt.base_model / "config.json", stage_processor_dir(ckpt.eagle_assets),
                              choose_attention("cpu"), config)


def save_checkpoint(ckpt: TinyCheckpoint, config: Any, stats: dict[str, dict[str, np.ndarray]], *, seed: int = 0,
                    save_dtype: str = "float32") -> None:
    """Builds the policy and writes OUT/pretrained_model through LeRobot's own save path, with the stats."""
    import torch
    from lerobot.policies.groot.processor_groot import make_groot_pre_post_processors

    torch.manual_seed(seed)
    policy = build_policy(ckpt, config)
    policy.to(dtype=getattr(torch, save_dtype))
    policy.save_pretrained(str(ckpt.pretrained_model))
    dataset_stats = {k: {s: torch.as_tensor(v) for s, v in d.items()} for k, d in stats.items()}
    pre, post = make_groot_pre_post_processors(config, dataset_stats)
    pre.save_pretrained(str(ckpt.pretrained_model))
    post.save_pretrained(str(ckpt.pretrained_model))


def make_tiny_checkpoint(out: str | Path, layout: Layout, *, seed: int = 0,
                         stats: dict[str, dict[str, np.ndarray]] | None = None) -> TinyCheckpoint:
    """Writes OUT/pretrained_model, OUT/base_model/config.json and OUT/eagle_assets/."""
    tiny = TinyCheckpoint(Path(out).resolve())
    write_model_files(tiny)
    save_checkpoint(tiny, policy_config(layout, IMAGE_SIZE), stats or default_stats(layout), seed=seed)
    return tiny


def parameter_count(checkpoint: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), "np") as f:
        return int(sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys()))


def synthetic_observation(layout: Layout, seed: int = 0, task: str = DEFAULT_TASK):
    """A plausible observation: state at the middle of the layout's ranges, random 480x640 camera images."""
    rng = np.random.default_rng(seed)
    stats = default_stats(layout)["observation.state"]
    state = (stats["min"] + stats["max"]) / 2.0
    images = {k: rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for k in layout.camera_keys}
    return Observation(state=state.astype(np.float64), images=images, task=task)
