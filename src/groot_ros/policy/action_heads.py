"""The action heads GR00T N1.5 checkpoints carry, told apart by their weight names, built on stock LeRobot 0.4.2.

LeRobot decodes the DiT's action tokens with one `action_decoder` into the 32 padded action dims. Our users'
fork (KKXiaoKang/humanoid_groot) replaced it, and its saved configs do not say so (the fork assumes its own
default when the base config is silent), so the weight names are the only reliable record of what was trained:

- `lerobot`: `action_decoder` (stock LeRobot, and the fork before 2025-12-01);
- `fork multi-head` (branch main since 2025-12-01): `action_arm_decoder` + `action_claw_decoder`, concatenated;
- `fork split arms` (branch dev): `action_left_arm_decoder` + `action_right_arm_decoder` + `action_claw_decoder`;
- `fork shared-bottom arms` (branch dev): one `shared_arm_decoder` (a shared first layer, a left and a right
  output layer) + `action_claw_decoder`; with `cross_attention`, each arm's features attend to the other arm's
  across the chunk's time steps first (the dev branch's default).

The fork's heads decode only the real action dims (arm + claw); the flow-matching state keeps the 32 padded dims
the action encoder was pre-trained with, and the fork zeroes the padded dims before every encoder call. We build
each head from LeRobot's own layers (CategorySpecificMLP/Linear) and torch's attention, registered on LeRobot's
action head under the fork's module names so the fine-tuned weights load strictly by name, and keep LeRobot's
denoising loop: the decoder pads its velocity with zeros and a pre-hook on the action encoder zeroes the padded
dims it reads, which is the fork's arithmetic. `task_log_sigma.*` (the fork's learnable loss weights) only
scales the training loss: it is accounted for and not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

HEAD_PREFIX = "_groot_model.action_head."
# Modules of the flow-matching head every variant shares (state/action encoders, DiT, VL layers, embeddings).
COMMON_MODULES = frozenset({"model", "state_encoder", "action_encoder", "future_tokens", "vlln",
                            "vl_self_attention", "position_embedding"})
TRAINING_ONLY = "task_log_sigma"
CROSS_ATTENTION_HEADS = 4  # the fork's nn.MultiheadAttention between the arms; not recorded in any config


class HeadError(ValueError):
    """The checkpoint's action head is none of the variants we can build; the message lists what is unknown."""


@dataclass(frozen=True)
class HeadVariant:
    name: str
    origin: str
    modules: frozenset[str]  # decoder modules under the action head, as the fork names them
    parts: tuple[str, ...]  # the decoded action parts, in output order
    loss_weights: frozenset[str] = frozenset()  # the task_log_sigma keys its training adds

    def describe(self) -> str:
        return f"{self.name} ({self.origin}: {' + '.join(sorted(self.modules))})"


LEROBOT = HeadVariant("lerobot", "stock LeRobot 0.4.2", frozenset({"action_decoder"}), ("action",))
FORK_MULTI = HeadVariant("fork multi-head", "humanoid_groot main", frozenset({"action_arm_decoder",
                         "action_claw_decoder"}), ("arm", "claw"), frozenset({"arm", "claw"}))
FORK_SPLIT = HeadVariant("fork split arms", "humanoid_groot dev", frozenset({
    "action_left_arm_decoder", "action_right_arm_decoder", "action_claw_decoder"}),
    ("left_arm", "right_arm", "claw"), frozenset({"left_arm", "right_arm", "claw"}))
FORK_SHARED = HeadVariant("fork shared-bottom arms", "humanoid_groot dev", frozenset({
    "shared_arm_decoder", "action_claw_decoder"}), ("left_arm", "right_arm", "claw"),
    frozenset({"left_arm", "right_arm", "claw"}))
FORK_SHARED_XATTN = HeadVariant("fork shared-bottom arms + cross-attention", "humanoid_groot dev default",
                                FORK_SHARED.modules, FORK_SHARED.parts, FORK_SHARED.loss_weights)
VARIANTS = (LEROBOT, FORK_MULTI, FORK_SPLIT, FORK_SHARED, FORK_SHARED_XATTN)

# Where each part's output size is read: the last layer's (categories, in, out) weight.
_OUTPUT_WEIGHT = {
    "action": "action_decoder.layer2.W", "arm": "action_arm_decoder.layer2.W",
    "claw": "action_claw_decoder.layer2.W",
}
_SPLIT_OUTPUT = {"left_arm": "action_left_arm_decoder.layer2.W", "right_arm": "action_right_arm_decoder.layer2.W"}
_SHARED_OUTPUT = {"left_arm": "shared_arm_decoder.left_output_layer.W",
                  "right_arm": "shared_arm_decoder.right_output_layer.W"}


@dataclass(frozen=True)
class ActionHeadSpec:
    """A detected head: its variant, the size of each decoded part, the encoder's padded width."""

    variant: HeadVariant
    part_dims: tuple[int, ...]
    encoder_dim: int  # action dims the action encoder and the flow-matching state carry (32 padded)
    hidden: int  # the decoders' input and hidden width (the DiT's output size)
    categories: int  # embodiments the category-specific layers hold
    ignored: tuple[str, ...] = ()  # training-only weight names present in the file, not loaded

    @property
    def action_dim(self) -> int:
        """How many action dims the head decodes (the padded width for LeRobot's head)."""
        return sum(self.part_dims)

    @property
    def pads(self) -> bool:
        return self.action_dim < self.encoder_dim

    def describe(self) -> str:
        parts = " + ".join(f"{p} {d}" for p, d in zip(self.variant.parts, self.part_dims))
        extra = f"; ignored training-only {', '.join(self.ignored)}" if self.ignored else ""
        return f"{self.variant.name} [{self.variant.origin}]: {parts} of {self.encoder_dim} padded dims{extra}"


def read_weight_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every tensor in a safetensors file, without reading the data."""
    from safetensors import safe_open

    with safe_open(str(weights), "np") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def detect_head(shapes: Mapping[str, tuple[int, ...]]) -> ActionHeadSpec:
    """The variant whose decoder modules are exactly the head's non-shared modules; HeadError if none is."""
    head = {k[len(HEAD_PREFIX):]: s for k, s in shapes.items() if k.startswith(HEAD_PREFIX)}
    modules = {k.split(".", 1)[0] for k in head} - COMMON_MODULES - {TRAINING_ONLY}
    sigmas = {k.split(".", 1)[1] for k in head if k.startswith(TRAINING_ONLY + ".")}
    variant = next((v for v in VARIANTS if v.modules == modules), None)
    decoders = frozenset().union(*(v.modules for v in VARIANTS))
    unknown = sorted([HEAD_PREFIX + k for k in head if k.split(".", 1)[0] not in COMMON_MODULES | decoders
                      | {TRAINING_ONLY}]
                     + [HEAD_PREFIX + TRAINING_ONLY + "." + s for s in sigmas
                        if variant is None or s not in variant.loss_weights])
    if variant is None or unknown:
        listed = ", ".join(unknown[:12]) + (f" (+{len(unknown) - 12} more)" if len(unknown) > 12 else "")
        raise HeadError(
            "the checkpoint's action head is none groot_ros can build: its decoder modules are "
            f"{sorted(modules) or 'none'}" + (f"; weights no known head has: [{listed}]" if unknown else "")
            + ". Known heads:\n    " + "\n    ".join(v.describe() for v in VARIANTS if v is not FORK_SHARED_XATTN)
            + " (with shared_arm_decoder.cross_attn_* it is the dev default, with cross-attention)")
    if variant is FORK_SHARED and any(k.startswith("shared_arm_decoder.cross_attn_left.") for k in head):
        variant = FORK_SHARED_XATTN
    outputs = {**_OUTPUT_WEIGHT, **(_SHARED_OUTPUT if variant.modules == FORK_SHARED.modules else _SPLIT_OUTPUT)}
    lacking = [HEAD_PREFIX + name for name in [outputs[p] for p in variant.parts] + ["action_encoder.W1.W"]
               if name not in head]
    if lacking:
        raise HeadError(f"the {variant.describe()} head lacks {', '.join(lacking)}")
    first = head[outputs[variant.parts[0]]]
    return ActionHeadSpec(variant=variant, part_dims=tuple(head[outputs[p]][-1] for p in variant.parts),
                          encoder_dim=head["action_encoder.W1.W"][1], hidden=first[1], categories=first[0],
                          ignored=tuple(sorted(HEAD_PREFIX + TRAINING_ONLY + "." + s for s in sigmas)))


def head_problems(spec: ActionHeadSpec, checkpoint_action_dim: int | None) -> list[str]:
    """What makes the head unusable with the checkpoint's declared action feature."""
    if checkpoint_action_dim is None:
        return []
    if spec.variant is LEROBOT:
        if checkpoint_action_dim > spec.action_dim:
            return [f"the action head decodes {spec.action_dim} dims, the checkpoint's action has "
                    f"{checkpoint_action_dim}"]
        return []
    if spec.action_dim != checkpoint_action_dim:
        return [f"the {spec.variant.name} head decodes {spec.action_dim} action dims ("
                + " + ".join(f"{p} {d}" for p, d in zip(spec.variant.parts, spec.part_dims))
                + f"), the checkpoint's action feature has {checkpoint_action_dim}: the other dims were never "
                "trained (the fork's heads decode arms and claws only)"]
    return []
