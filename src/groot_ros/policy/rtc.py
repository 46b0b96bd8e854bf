"""Real-time chunking (RTC) for the GR00T N1.5 flow-matching head: a new chunk that continues the plan under way.

The execution core hands the policy a ChunkPrefix (core/prefix.py): the rows of the plan that will still run,
re-timed to the new observation, in robot units, and how many of them run before the new chunk can take over
(`delay_steps`). Here they become a PrefixPlan in the model's normalized space, and the Euler loop of the
flow-matching head (`euler_denoise`, the one loop both engines run when a prefix is given) is steered by it:

- "guided" (Black, Galliker, Levine 2025; LeRobot 0.4.2's RTCProcessor for pi0/SmolVLA): each denoising step
  predicts the clean chunk, x1 = x + (1 - t) v, and adds g(t) * W * (prefix - x1) to the velocity. W is
  LeRobot's prefix-weight schedule (1 over the delay rows, decaying over the rest of the prefix, 0 after it;
  we call LeRobot's own `get_prefix_weights`), g(t) its guidance weight capped at `max_guidance_weight`. As in
  LeRobot 0.4.2 the velocity is not differentiated (its `v_t` is computed before `x_t` requires grad), so the
  correction is the weighted error itself and no backward pass runs.
- "prefix" (GR00T's own method, as LeRobot main does it for GR00T N1.7): inpainting. Before each step the prefix
  rows of x are replaced by the prefix on the same noise-to-data path, x = (1 - t) noise + t prefix, with weight
  1 on the delay rows and exp(-ramp_rate * s) over the rest of the prefix (s from 0 to 1), 0 after it.

Time convention: GR00T's t runs from 0 (noise) to 1 (data), x_{t+dt} = x_t + dt v with v = data - noise; LeRobot's
RTC module runs its `time` the other way (1 = noise) with v = noise - data. `guided_velocity` is LeRobot's
`denoise_step` with time = 1 - t and the velocity's sign flipped (test_rtc.py checks it against LeRobot's code).

In both methods the delay rows of the returned chunk are the prefix's, exactly (`frozen_rows`): they run before
the chunk takes over, so the chunk must agree with what the robot does meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from groot_ros.core.prefix import ChunkPrefix

METHODS = ("guided", "prefix")
SCHEDULES = ("linear", "exp", "ones", "zeros")


@dataclass(frozen=True)
class RtcOptions:
    """How the policy honours a prefix. The defaults are the measured winner (docs/rtc.md)."""

    method: str = "guided"
    schedule: str = "exp"  # guided: LeRobot's decay of W over the prefix rows after the delay (the fork's: exp)
    max_guidance_weight: float = 10.0  # guided: g(t) cap (LeRobot's default); at 300 ms in sim-loop the boundary
    # p99 was 0.192 rad with 1.0 (the fork's), 0.082 with 4.0, 0.057 with 10.0 (docs/rtc.md)
    ramp_rate: float = 6.0  # prefix: GR00T's ramp after the frozen rows

    def __post_init__(self) -> None:
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {METHODS}, got {self.method!r}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not (math.isfinite(self.max_guidance_weight) and self.max_guidance_weight > 0):
            problems.append(f"max_guidance_weight must be positive, got {self.max_guidance_weight!r}")
        if not (math.isfinite(self.ramp_rate) and self.ramp_rate >= 0):
            problems.append(f"ramp_rate must be >= 0, got {self.ramp_rate!r}")
        if problems:
            raise ValueError("invalid RTC options: " + "; ".join(problems))


def guidance_weight(t: float, max_weight: float) -> float:
    """LeRobot's g for GR00T's flow time t (0 = noise): (1-t)/t * ((1-t)^2 + t^2)/(1-t)^2, capped; the cap at t = 0."""
    if t <= 0.0:
        return max_weight
    if t >= 1.0:
        return 0.0
    return min(max_weight, (1 - t) / t * ((1 - t) ** 2 + t ** 2) / (1 - t) ** 2)


def prefix_weights(options: RtcOptions, delay: int, rows: int, horizon: int) -> np.ndarray:
    """(horizon,) weight per chunk row: 1 on the `delay` frozen rows, the method's decay over the other prefix
    rows, 0 after the `rows` of the prefix."""
    if options.method == "guided":
        from lerobot.configs.types import RTCAttentionSchedule
        from lerobot.policies.rtc.configuration_rtc import RTCConfig
        from lerobot.policies.rtc.modeling_rtc import RTCProcessor

        lerobot = RTCProcessor(RTCConfig(prefix_attention_schedule=RTCAttentionSchedule[options.schedule.upper()]))
        return lerobot.get_prefix_weights(delay, rows, horizon).numpy().astype(np.float64)
    weights = np.zeros(horizon)
    weights[:delay] = 1.0
    ramp = rows - delay
    if ramp > 0:
        weights[delay:rows] = np.exp(-options.ramp_rate * np.arange(1, ramp + 1) / ramp)
    return weights


@dataclass(frozen=True)
class PrefixPlan:
    """A ChunkPrefix in the head's tensors: target (1, horizon, width) normalized and zero-padded, weights
    (1, horizon, width) with zeros on padded dims and rows, and the frozen row count."""

    options: RtcOptions
    target: Any  # torch tensor
    weights: Any  # torch tensor
    delay: int
    normalized: np.ndarray  # (rows, action_dim) the prefix in the model's space

    @classmethod
    def build(cls, prefix: ChunkPrefix, options: RtcOptions, normalize: Callable[[np.ndarray], np.ndarray],
              horizon: int, width: int, device: Any, dtype: Any) -> "PrefixPlan":
        import torch

        actions = np.asarray(prefix.actions, dtype=np.float64)[:horizon]
        if not np.isfinite(actions).all():
            raise ValueError("RTC prefix has NaN/inf rows: the plan under way is not a valid prefix")
        normalized = normalize(actions).astype(np.float32)
        rows, dim = normalized.shape
        delay = min(prefix.delay_steps, rows)
        target = np.zeros((1, horizon, width), np.float32)
        target[0, :rows, :dim] = normalized
        weights = np.zeros((1, horizon, width), np.float32)
        weights[0, :, :dim] = prefix_weights(options, delay, rows, horizon)[:, None]
        return cls(options, torch.as_tensor(target, device=device, dtype=dtype),
                   torch.as_tensor(weights, device=device, dtype=dtype), delay, normalized)

    def step(self, x: Any, velocity: Callable[[Any], Any], t: float, dt: float, noise: Any) -> Any:
        """One Euler step from flow time t with the prefix honoured."""
        if self.options.method == "prefix":
            x = x + self.weights * ((1 - t) * noise + t * self.target - x)
            return x + dt * velocity(x)
        return x + dt * guided_velocity(x, velocity(x), t, self.target, self.weights,
                                        self.options.max_guidance_weight)


def guided_velocity(x: Any, v: Any, t: float, target: Any, weights: Any, max_weight: float) -> Any:
    """v + g(t) W (target - x1), x1 = x + (1 - t) v: the predicted clean chunk pulled toward the prefix."""
    return v + guidance_weight(t, max_weight) * weights * (target - (x + (1 - t) * v))


def head_velocity(head: Any, vl: Any, state_features: Any, actions: Any, timestep: Any, embodiment: Any) -> Any:
    """The flow-matching head's velocity for noisy `actions` at an integer timestep bucket (LeRobot's get_action
    loop body: action encoder, position embedding, DiT over state + future + action tokens, decoder)."""
    import torch

    features = head.action_encoder(actions, timestep, embodiment)
    if head.config.add_pos_embed:
        features = features + head.position_embedding.weight[: features.shape[1]].unsqueeze(0)
    future = head.future_tokens.weight.unsqueeze(0).expand(vl.shape[0], -1, -1)
    out = head.model(hidden_states=torch.cat((state_features, future, features), dim=1), encoder_hidden_states=vl,
                     timestep=timestep)
    return head.action_decoder(out, embodiment)[:, -head.action_horizon:]


def euler_denoise(head: Any, vl: Any, state_features: Any, noise: Any, timesteps: list, embodiment: Any,
                  plan: PrefixPlan | None = None) -> Any:
    """The head's Euler loop from `noise` over `timesteps` (one bucket tensor per step), steered by `plan`."""
    dt = 1.0 / len(timesteps)
    x = noise
    for i, bucket in enumerate(timesteps):
        def velocity(a: Any, bucket: Any = bucket) -> Any:
            return head_velocity(head, vl, state_features, a, bucket, embodiment)

        x = x + dt * velocity(x) if plan is None else plan.step(x, velocity, i * dt, dt, noise)
    return x


def timestep_buckets(head: Any, batch: int, device: Any) -> list:
    """GR00T's integer timestep per Euler step: int(i / N * num_timestep_buckets), as its get_action builds them."""
    import torch

    steps = head.num_inference_timesteps
    return [torch.full((batch,), int(i / float(steps) * head.num_timestep_buckets), device=device)
            for i in range(steps)]


def frozen_rows(normalized: np.ndarray, chunk: np.ndarray, prefix: ChunkPrefix,
                plan: PrefixPlan) -> tuple[np.ndarray, np.ndarray]:
    """The chunk with its first `delay` rows set to the prefix's, in both spaces (robot units exactly)."""
    d = plan.delay
    normalized, chunk = normalized.copy(), chunk.copy()
    normalized[:d] = plan.normalized[:d]
    chunk[:d] = np.asarray(prefix.actions)[:d]
    return normalized, chunk


def check_prefix(prefix: ChunkPrefix, action_dim: int) -> None:
    if prefix.actions.shape[1] != action_dim:
        raise ValueError(f"RTC prefix has {prefix.actions.shape[1]} action dims, the checkpoint {action_dim}")
