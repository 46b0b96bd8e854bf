"""A faster way to run a loaded GR00T N1.5 checkpoint: same weights, same outputs, less work per chunk.

What the stock LeRobot path (preprocessor pipeline + GrootPolicy.predict_action_chunk) spends time on that one
observation at a time does not need, and what we do instead (docs/inference_speed.md has the measurements):

- images: numpy -> PIL -> torch on the CPU, resized there, then copied to the device as float32. We copy the
  uint8 frames once and resize/normalize on the model's device with the stock processor's arithmetic.
- prompt: the chat template and tokenizer run on every call although the task text rarely changes. We run the
  stock pipeline once per task text and keep its token ids and where the image tokens go.
- LLM: Qwen3 computes lm_head logits over a 151,680-word vocabulary for every token; GR00T reads only the hidden
  states of its last kept layer. We run the decoder stack alone (and drop an untied lm_head's weights).
- DiT: every denoising step projects the same backbone features to keys/values in each cross-attention block.
  We compute them once per chunk (a diffusers attention processor; LeRobot's blocks are not edited).
- bf16 weights instead of fp32 weights under autocast: half the weight reads and memory, no casts per op.
- optional: torch.compile, and CUDA graphs for the backbone and the action head (no per-kernel launch cost).

The model's own modules do the arithmetic; only the orchestration around them is ours.
`fast_engine(checkpoint, options)` returns a FastEngine: a GrootRuntime predicts through it after enable_fast_path().
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.base import ChunkPolicy, PolicyInputs, Prediction, StageClock
from groot_ros.policy.rtc import PrefixPlan, RtcOptions, check_prefix, euler_denoise, frozen_rows, timestep_buckets
from groot_ros.policy.stock import seeded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastOptions:
    """Each speed-up can be switched off alone, so each can be measured and checked against the stock path."""

    bf16_weights: bool = True  # only used when the checkpoint is loaded in bfloat16
    gpu_preprocess: bool = True
    skip_lm_head: bool = True
    kv_cache: bool = True
    compile: bool = False
    cuda_graphs: bool = False

    def enabled(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass(frozen=True)
class ImageSpec:
    """The stock Eagle image processor's arithmetic for one tile per image (max_dynamic_tiles=1, no thumbnail)."""

    size: int
    mode: str  # torch interpolate mode: "bicubic" or "bilinear"
    mean: tuple[float, ...]  # in 0..255 units (mean / rescale_factor, fused as the stock processor does)
    std: tuple[float, ...]

    @classmethod
    def from_processor(cls, image_processor: Any) -> "ImageSpec":
        ip = image_processor
        modes = {2: "bilinear", 3: "bicubic"}  # PIL resample codes
        problems = []
        if int(ip.resample) not in modes:
            problems.append(f"resample {ip.resample}")
        if ip.size.get("height") != ip.size.get("width"):
            problems.append(f"non-square tiles {ip.size}")
        if not (ip.do_resize and ip.do_rescale and ip.do_normalize) or getattr(ip, "do_center_crop", None):
            problems.append("resize/rescale/normalize switched off or center crop on")
        if problems:
            raise ValueError(f"GPU image preprocessing does not replicate this Eagle processor: {', '.join(problems)}")
        import torch

        scale = 1.0 / ip.rescale_factor
        mean = (torch.tensor(ip.image_mean) * scale).tolist()
        std = (torch.tensor(ip.image_std) * scale).tolist()
        return cls(int(ip.size["height"]), modes[int(ip.resample)], tuple(mean), tuple(std))


def preprocess_images(frames: Any, spec: ImageSpec, native_uint8: bool | None = None) -> Any:
    """(N, H, W, 3) uint8 frames on any device -> (N, 3, size, size) float32 pixel_values, as the stock processor.

    torchvision resizes uint8 images with its own uint8 kernel on the CPU (fixed-point weights, rounding between
    the horizontal and vertical pass); anywhere else in float (antialiased), clamped to 0..255 and rounded back.
    We do what torchvision does on the frames' device, so on the CPU the result is the stock one bit for bit and
    on a GPU it is what the stock processor would give there (within one uint8 step of the CPU kernel's).
    The normalisation then runs on those integers, as the stock processor's fused rescale+normalize does.
    `native_uint8` overrides the choice of kernel (default: the CPU kernel on the CPU).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    x = frames.permute(0, 3, 1, 2)
    if tuple(x.shape[-2:]) != (spec.size, spec.size):
        size = (spec.size, spec.size)
        if native_uint8 if native_uint8 is not None else x.device.type == "cpu":
            x = F.interpolate(x.contiguous(), size=size, mode=spec.mode, align_corners=False, antialias=True)
        else:
            x = F.interpolate(x.float(), size=size, mode=spec.mode, align_corners=False,
                              antialias=True).clamp_(0, 255).round_()
    mean = torch.tensor(spec.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, -1, 1, 1)
    return (x.float() - mean) / std


@dataclass(frozen=True)
class Prompt:
    """The stock pipeline's token ids for one task text and camera count, and where the image tokens sit."""

    input_ids: Any  # (1, L) long, on the device
    image_positions: Any  # (n_image_tokens,) long, on the device
    attention_mask: Any  # Qwen3's mask mapping when nothing is padded (always, for one observation), else a mask


class CrossAttentionKV:
    """A diffusers attention processor whose keys/values are computed once per chunk by `bind`.

    The DiT's cross-attention blocks see the same backbone features in all denoising steps, so their K/V
    projections are the same each step. Unbound, it is the stock processor.
    """

    def __init__(self, attn: Any):
        if attn.norm_cross or attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None \
                or attn.norm_k is not None or attn.residual_connection or attn.rescale_output_factor != 1.0:
            raise ValueError("cross-attention K/V caching supports plain attention blocks only")
        self.stock = attn.processor
        self.kv: tuple[Any, Any] | None = None

    def bind(self, attn: Any, encoder_hidden_states: Any) -> None:
        b = encoder_hidden_states.shape[0]
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        self.kv = (key.view(b, -1, attn.heads, head_dim).transpose(1, 2),
                   value.view(b, -1, attn.heads, head_dim).transpose(1, 2))

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        if self.kv is None or encoder_hidden_states is None or attention_mask is not None:
            return self.stock(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        import torch.nn.functional as F  # noqa: N812

        key, value = self.kv
        b = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        query = query.view(b, -1, attn.heads, key.shape[-1]).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(b, -1, attn.heads * key.shape[-1]).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


class DiTKVCache:
    """Installs CrossAttentionKV on every cross-attention block of a DiT."""

    def __init__(self, dit: Any):
        self.pairs = []
        for block in dit.transformer_blocks:
            if block.attn1.is_cross_attention:
                processor = CrossAttentionKV(block.attn1)
                block.attn1.set_processor(processor)
                self.pairs.append((block.attn1, processor))

    def bind(self, encoder_hidden_states: Any) -> None:
        for attn, processor in self.pairs:
            processor.bind(attn, encoder_hidden_states)

    def release(self) -> None:
        for _, processor in self.pairs:
            processor.kv = None


class GraphedCall:
    """A function of fixed-shape CUDA tensors, captured once into a CUDA graph and replayed.

    Inputs are copied into the captured buffers; the returned tensor is the captured output buffer, valid
    until the next call.
    """

    def __init__(self, fn: Callable[..., Any], example: tuple[Any, ...], warmup: int = 2):
        import torch

        self.inputs = tuple(x.clone() for x in example)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = fn(*self.inputs)

    def __call__(self, *inputs: Any) -> Any:
        for buffer, x in zip(self.inputs, inputs):
            buffer.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.output


class FastEngine(ChunkPolicy):
    """Predicts chunks from a loaded GrootRuntime with the options' speed-ups; see the module docstring."""

    name = "groot_ros fast"

    def __init__(self, checkpoint: Any, options: FastOptions):
        import torch

        self.checkpoint = checkpoint  # a policy.runtime.LoadedCheckpoint
        self.options = options
        self.rtc = RtcOptions()  # how a prefix is honoured (GrootRuntime.rtc sets it)
        self.device = torch.device(checkpoint.device)
        self.model = checkpoint.policy._groot_model
        self.cuda = self.device.type == "cuda"
        if options.cuda_graphs and not self.cuda:
            raise ValueError("CUDA graphs need a CUDA device")
        self.param_dtype = next(self.model.parameters()).dtype
        # Weights in fp32 with bf16 compute is LeRobot's own mode (autocast); bf16 weights need no autocast.
        self.autocast = checkpoint.dtype == "bfloat16" and self.param_dtype == torch.float32
        self.input_dtype = torch.bfloat16 if checkpoint.dtype == "bfloat16" else self.param_dtype
        pack = _pipeline_step(checkpoint.preprocessor, "GrootPackInputsStep")
        self.embodiment_id = int(pack.embodiment_mapping.get(pack.embodiment_tag, 0))
        self.max_state_dim = int(pack.max_state_dim)
        eagle_step = _pipeline_step(checkpoint.preprocessor, "GrootEagleEncodeStep")
        self.image_spec = ImageSpec.from_processor(eagle_step.proc.image_processor)
        self.prompts: dict[tuple[str, int], Prompt] = {}
        self.graphs: dict[tuple, GraphedCall] = {}
        self._setup_constants()
        eagle = self.model.backbone.eagle_model
        lm = eagle.language_model
        if options.skip_lm_head and lm.lm_head.weight is not lm.model.embed_tokens.weight:
            lm.lm_head = torch.nn.Identity()  # never read by GR00T; frees an untied 151,680 x hidden matrix
        self.kv = DiTKVCache(self.model.action_head.model) if options.kv_cache else None
        self._backbone_fn = self._backbone
        self._head_fn = self._denoise
        if options.compile:
            self._backbone_fn = torch.compile(self._backbone, dynamic=False)
            self._head_fn = torch.compile(self._denoise, dynamic=False)

    def _setup_constants(self) -> None:
        """Per-step tensors that the stock loop rebuilds on every call."""
        import torch

        self.timesteps = timestep_buckets(self.model.action_head, 1, self.device)
        self.embodiment = torch.full((1,), self.embodiment_id, dtype=torch.long, device=self.device)

    # ---- preprocessing -------------------------------------------------------------------------------------
    def prompt(self, task: str) -> Prompt:
        """Token ids from the stock pipeline itself, run once per task on blank tile-sized frames."""
        import torch

        cameras = self.checkpoint.info.camera_keys
        key = (task, len(cameras))
        if key not in self.prompts:
            size = self.image_spec.size
            blank = Observation(state=np.zeros(self.checkpoint.layout.state_dim), task=task,
                                images={k: np.zeros((size, size, 3), np.uint8) for k in cameras})
            batch = self.checkpoint.preprocessor(self.checkpoint.batch_for(blank))
            ids = batch["eagle_input_ids"].to(self.device)
            mask = batch["eagle_attention_mask"]
            image_token = self.model.backbone.eagle_model.image_token_index
            positions = torch.nonzero(ids[0] == image_token).flatten()
            unpadded = bool(mask.all())
            self.prompts[key] = Prompt(ids, positions, self._causal_only() if unpadded else mask.to(self.device))
        return self.prompts[key]

    def _causal_only(self) -> Any:
        """With nothing padded, the LLM's masks are plain causal: hand Qwen3 its per-layer-type mask mapping with
        no mask, so SDPA runs is_causal without building a mask (and without the data-dependent check on the
        padding mask that a CUDA graph cannot hold). Sliding-window layers need a real mask: keep the ones."""
        lm = self.model.backbone.eagle_model.language_model
        layer_types = set(getattr(lm.config, "layer_types", None) or ["full_attention"])
        if layer_types != {"full_attention"}:
            return None
        return {"full_attention": None}

    def _inputs(self, obs: Observation) -> tuple[Any, Any, Prompt]:
        """(pixel_values, padded normalized state, prompt) on the device; with gpu_preprocess off, the pixels and
        state come from the stock pipeline (what the option replaces)."""
        import torch

        prompt = self.prompt(obs.task)
        if not self.options.gpu_preprocess:
            batch = self.checkpoint.preprocessor(self.checkpoint.batch_for(obs))
            return (batch["eagle_pixel_values"].to(self.device, self.input_dtype),
                    batch["state"].to(self.device, self.input_dtype), prompt)
        # The checkpoint first brings each camera to the checkpoint's trained resolution (cv2 area resize on the CPU,
        # which also shrinks what is copied to the device); the Eagle processor's resize and normalisation follow.
        frames = [torch.from_numpy(self.checkpoint.trained_size(k, obs.images[k])) for k in self.checkpoint.info.camera_keys]
        groups = [torch.stack(frames)] if len({f.shape for f in frames}) == 1 else [f[None] for f in frames]
        pixels = torch.cat([preprocess_images(self._upload(g), self.image_spec) for g in groups])
        # The state's min/max mapping on the host in float32, as the stock pack step does it, then padded.
        padded = np.zeros((1, 1, self.max_state_dim), dtype=np.float32)
        padded[0, 0, : len(obs.state)] = self.checkpoint.stats.state.normalize(obs.state, dtype=np.float32)
        return pixels.to(self.input_dtype), self._upload(torch.from_numpy(padded)).to(self.input_dtype), prompt

    def _upload(self, tensor: Any) -> Any:
        """One asynchronous copy from pinned memory to the device (a plain no-op on the CPU)."""
        if self.cuda:
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    # ---- model ---------------------------------------------------------------------------------------------
    def _backbone(self, pixel_values: Any, prompt: Prompt) -> Any:
        """EagleBackbone.forward for one observation, without lm_head and without data-dependent indexing."""
        import torch
        from transformers.feature_extraction_utils import BatchFeature

        backbone = self.model.backbone
        if not self.options.skip_lm_head:
            batch = BatchFeature(data={"eagle_pixel_values": pixel_values, "eagle_input_ids": prompt.input_ids,
                                       "eagle_attention_mask": prompt.attention_mask
                                       if isinstance(prompt.attention_mask, torch.Tensor) else torch.ones_like(
                                           prompt.input_ids), "eagle_image_sizes": None})
            return backbone(batch)["backbone_features"]
        eagle = backbone.eagle_model
        embeds = eagle.language_model.get_input_embeddings()(prompt.input_ids)
        vit = eagle.extract_feature(pixel_values)
        embeds[:, prompt.image_positions] = vit.reshape(1, -1, embeds.shape[-1]).to(embeds.dtype)
        hidden = eagle.language_model.model(inputs_embeds=embeds, attention_mask=prompt.attention_mask,
                                            use_cache=False)  # one forward pass: no KV cache to fill
        # GR00T takes hidden_states[select_layer] after truncating the LLM to select_layer layers: the last one.
        return backbone.eagle_linear(hidden.last_hidden_state)

    def _denoise(self, features: Any, state: Any, noise: Any, plan: PrefixPlan | None = None) -> Any:
        """FlowmatchingActionHead.get_action's Euler loop (policy/rtc.py, steered by an RTC plan when given), with
        per-call constants hoisted and K/V cached."""
        head = self.model.action_head
        vl = head.vl_self_attention(head.vlln(features))
        state_features = head.state_encoder(state, self.embodiment)
        if self.kv is not None:
            self.kv.bind(vl)
        try:
            return euler_denoise(head, vl, state_features, noise, self.timesteps, self.embodiment, plan)
        finally:
            if self.kv is not None:
                self.kv.release()

    def _graphed(self, name: str, key: tuple, fn: Callable[..., Any], *inputs: Any) -> Any:
        if (name, key) not in self.graphs:
            self.graphs[(name, key)] = GraphedCall(fn, inputs)
        return self.graphs[(name, key)](*inputs)

    def predict(self, obs: Observation, seed: int | None = None, prefix: ChunkPrefix | None = None,
                clock: StageClock | None = None) -> Prediction:
        """One chunk, timed per stage (preprocess, backbone, action_head, denormalize; `clock`: one whose marks
        synchronise the device, for the bench). The noise is drawn like the stock path's, so the same seed gives
        the same chunk. With a prefix, the head runs the RTC loop (policy/rtc.py; not captured in a CUDA graph)."""
        import torch

        clock = clock or StageClock()
        self.checkpoint.check_observation(obs)
        if prefix is not None:
            check_prefix(prefix, self.checkpoint.stats.action.dim)
        head = self.model.action_head
        with torch.no_grad(), seeded(seed, self.checkpoint.device), \
                torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            pixels, state, prompt = self._inputs(obs)
            clock.mark("preprocess")
            if self.options.cuda_graphs:
                features = self._graphed("backbone", (obs.task, pixels.shape),
                                         lambda p: self._backbone_fn(p, prompt), pixels)
            else:
                features = self._backbone_fn(pixels, prompt)
            clock.mark("backbone")
            # The stock head draws its noise in the backbone features' dtype, fp32 in LeRobot's both modes.
            noise = torch.randn((1, head.action_horizon, head.action_dim), dtype=torch.float32, device=self.device)
            noise = noise.to(self.input_dtype if not self.autocast else torch.float32)
            plan = None if prefix is None else PrefixPlan.build(
                prefix, self.rtc, self.checkpoint.stats.action.normalize, head.action_horizon, head.action_dim,
                self.device, noise.dtype)
            if plan is not None:
                actions = self._denoise(features, state, noise, plan)
            elif self.options.cuda_graphs:
                actions = self._graphed("head", (features.shape,), self._head_fn, features, state, noise)
            else:
                actions = self._head_fn(features, state, noise)
            clock.mark("action_head")
            normalized = actions[0, :, : self.checkpoint.stats.action.dim].float().cpu().numpy()
        chunk = self.checkpoint.stats.action.denormalize(normalized)
        if plan is not None:
            normalized, chunk = frozen_rows(normalized, chunk, prefix, plan)
        clock.mark("denormalize")
        return Prediction(normalized=normalized, chunk=chunk, timings=clock.timings())

    @property
    def expects(self) -> PolicyInputs:
        return self.checkpoint.expects

    def reset(self) -> None:
        """Drops the per-task prompt cache and the captured CUDA graphs (rebuilt on the next call)."""
        self.prompts.clear()
        self.graphs.clear()


def _pipeline_step(pipeline: Any, class_name: str) -> Any:
    for step in pipeline.steps:
        if type(step).__name__ == class_name:
            return step
    raise ValueError(f"the checkpoint's preprocessor has no {class_name} step")


def fast_engine(checkpoint: Any, options: FastOptions = FastOptions()) -> FastEngine:
    """Applies the options to a loaded checkpoint (bf16 weights and lm_head removal change its model in place)
    and returns the engine to predict with. A stock engine on the same checkpoint keeps working (lm_head is never
    read)."""
    import torch

    if options.bf16_weights and checkpoint.dtype == "bfloat16":
        checkpoint.policy.to(dtype=torch.bfloat16)
    return FastEngine(checkpoint, options)
