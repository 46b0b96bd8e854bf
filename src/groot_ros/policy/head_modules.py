"""The torch side of policy/action_heads.py: the fork's decoders, built from LeRobot's layers, installed on a
LeRobot GrootPolicy before its weights load. Ours, written from what the fork's heads compute."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F  # noqa: N812
from lerobot.policies.groot.action_head.flow_matching_action_head import CategorySpecificLinear, CategorySpecificMLP

from groot_ros.policy.action_heads import (CROSS_ATTENTION_HEADS, FORK_MULTI, FORK_SHARED_XATTN, FORK_SPLIT, LEROBOT,
                                           ActionHeadSpec)


class SharedBottomArms(torch.nn.Module):
    """The fork's shared-bottom arm decoder: one category-specific layer (ReLU) for both arms, then a left and a
    right output layer. With cross-attention, each arm's layer-normed features first attend to the other arm's
    across the chunk's time steps (residual), both from the same shared features."""

    def __init__(self, categories: int, hidden: int, left: int, right: int, cross_attention: bool):
        super().__init__()
        self.shared_layer = CategorySpecificLinear(categories, hidden, hidden)
        self.left_output_layer = CategorySpecificLinear(categories, hidden, left)
        self.right_output_layer = CategorySpecificLinear(categories, hidden, right)
        self.cross_attention = cross_attention
        if cross_attention:
            self.cross_attn_left = torch.nn.MultiheadAttention(hidden, CROSS_ATTENTION_HEADS, batch_first=True)
            self.cross_attn_right = torch.nn.MultiheadAttention(hidden, CROSS_ATTENTION_HEADS, batch_first=True)
            self.layer_norm_left = torch.nn.LayerNorm(hidden)
            self.layer_norm_right = torch.nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, cat_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shared = F.relu(self.shared_layer(x, cat_ids))
        left = right = shared
        if self.cross_attention:
            left, right = self.layer_norm_left(shared), self.layer_norm_right(shared)
            left, right = (left + self.cross_attn_left(left, right, right)[0],
                           right + self.cross_attn_right(right, left, left)[0])
        return self.left_output_layer(left, cat_ids), self.right_output_layer(right, cat_ids)


class PaddedDecoding:
    """The action head's `action_decoder` for the fork's heads: decodes the last `horizon` tokens with each part
    in output order, concatenates, and pads the velocity with zeros to the flow-matching state's width.

    Not an nn.Module on purpose: its parts are registered on the head under the fork's names and this object
    only orders them. LeRobot passes every DiT token; the fork decodes the action tokens alone, which matters to
    the cross-attention head (it attends across the tokens it is given).
    """

    def __init__(self, parts: list[Callable[..., Any]], horizon: int, width: int):
        self.parts = parts
        self.horizon = horizon
        self.width = width

    def __call__(self, tokens: torch.Tensor, embodiment_id: torch.Tensor) -> torch.Tensor:
        x = tokens[:, -self.horizon:]
        outputs: list[torch.Tensor] = []
        for part in self.parts:
            out = part(x, embodiment_id)
            outputs += list(out) if isinstance(out, tuple) else [out]
        velocity = torch.cat(outputs, dim=-1)
        return F.pad(velocity, (0, self.width - velocity.shape[-1]))


def zero_padding(action_dim: int) -> Callable[[Any, tuple], tuple]:
    """A forward pre-hook that hands the action encoder zeros in the padded dims, as the fork's loop does (it
    zeroes them in the noise and after every Euler step; the real dims are untouched either way)."""

    def hook(_module: Any, args: tuple) -> tuple:
        actions, *rest = args
        return (F.pad(actions[..., :action_dim], (0, actions.shape[-1] - action_dim)), *rest)

    return hook


def install_head(policy: Any, spec: ActionHeadSpec) -> None:
    """Replaces LeRobot's `action_decoder` on a built GrootPolicy with the detected variant's decoders.

    For LeRobot's own head nothing changes. Otherwise the decoders are registered on the action head under the
    fork's names (so `model.safetensors` loads strictly by name), `action_decoder` becomes the callable that
    LeRobot's denoising loop and our fast engine both call, and the action encoder sees the padded dims as zeros.
    """
    if spec.variant is LEROBOT:
        return
    head = policy._groot_model.action_head
    dims = dict(zip(spec.variant.parts, spec.part_dims))

    def mlp(out: int) -> CategorySpecificMLP:
        return CategorySpecificMLP(spec.categories, spec.hidden, spec.hidden, out)

    if spec.variant is FORK_MULTI:
        head.action_arm_decoder = mlp(dims["arm"])
        parts = [head.action_arm_decoder]
    elif spec.variant is FORK_SPLIT:
        head.action_left_arm_decoder, head.action_right_arm_decoder = mlp(dims["left_arm"]), mlp(dims["right_arm"])
        parts = [head.action_left_arm_decoder, head.action_right_arm_decoder]
    else:
        head.shared_arm_decoder = SharedBottomArms(spec.categories, spec.hidden, dims["left_arm"], dims["right_arm"],
                                                   cross_attention=spec.variant is FORK_SHARED_XATTN)
        parts = [head.shared_arm_decoder]
    head.action_claw_decoder = mlp(dims["claw"])
    del head.action_decoder
    head.action_decoder = PaddedDecoding(parts + [head.action_claw_decoder], head.action_horizon, spec.encoder_dim)
    head.action_encoder.register_forward_pre_hook(zero_padding(spec.action_dim))
