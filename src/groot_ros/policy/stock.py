"""LeRobot's own inference path as an engine: its preprocessor pipeline and GrootPolicy.predict_action_chunk.

The reference every speed-up is checked against (bench-policy times this engine). What is added: the full-chunk
de-normalization (LeRobot's postprocessor keeps only the last row); the seed handling (an unseeded call draws fresh
noise from the global generator, as LeRobot does; a seeded call runs in a forked generator so it repeats exactly and
leaves the global random state as it was); and real-time chunking: with a prefix, the action head's get_action is
swapped for the call's duration by the RTC loop of policy/rtc.py (LeRobot 0.4.2's GR00T has none), which draws its
noise and builds its timesteps as LeRobot's get_action does.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from groot_ros.core.observation import Observation
from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.base import ChunkPolicy, PolicyInputs, Prediction, StageClock
from groot_ros.policy.rtc import PrefixPlan, RtcOptions, check_prefix, euler_denoise, frozen_rows, timestep_buckets


@contextlib.contextmanager
def seeded(seed: int | None, device: str) -> Iterator[None]:
    """Fresh noise without a seed; with one, the same noise every time, the global generator untouched."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[torch.device(device)] if device.startswith("cuda") else []):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def model_stage_marks(policy: Any, clock: StageClock) -> Iterator[None]:
    """Marks the backbone and the action head inside an unmodified predict_action_chunk (instance wrappers only,
    removed afterwards); the code between them is charged to "other"."""
    model = policy._groot_model
    backbone_forward, get_action = model.backbone.forward, model.action_head.get_action

    def timed(fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            clock.mark("other")
            out = fn(*args, **kwargs)
            clock.mark(stage)
            return out
        return call

    model.backbone.forward = timed(backbone_forward, "backbone")
    model.action_head.get_action = timed(get_action, "action_head")
    try:
        yield
    finally:
        del model.backbone.forward, model.action_head.get_action


@contextlib.contextmanager
def rtc_head(policy: Any, plan_for: Callable[[Any, Any], PrefixPlan] | None) -> Iterator[list]:
    """With `plan_for` (noise dtype, device -> the call's PrefixPlan), the action head's get_action runs the RTC
    loop for the duration (an instance attribute, removed afterwards); yields a list that receives the plan."""
    plans: list = []
    if plan_for is None:
        yield plans
        return
    import torch
    from transformers.feature_extraction_utils import BatchFeature

    head = policy._groot_model.action_head

    def get_action(backbone_output: Any, action_input: Any) -> Any:
        backbone_output = head.process_backbone_output(backbone_output)
        vl = backbone_output.backbone_features
        embodiment = action_input.embodiment_id
        state_features = head.state_encoder(action_input.state, embodiment)
        noise = torch.randn(size=(vl.shape[0], head.config.action_horizon, head.config.action_dim), dtype=vl.dtype,
                            device=vl.device)
        plans.append(plan_for(noise.dtype, vl.device))
        actions = euler_denoise(head, vl, state_features, noise, timestep_buckets(head, vl.shape[0], vl.device),
                                embodiment, plans[-1])
        return BatchFeature(data={"action_pred": actions})

    head.get_action = get_action
    try:
        yield plans
    finally:
        head.__dict__.pop("get_action", None)  # model_stage_marks (entered after) may have removed it already


class StockEngine(ChunkPolicy):
    name = "stock LeRobot"

    def __init__(self, checkpoint: Any):
        self.checkpoint = checkpoint  # a policy.runtime.LoadedCheckpoint
        self.rtc = RtcOptions()  # how a prefix is honoured (GrootRuntime.rtc sets it)

    @property
    def expects(self) -> PolicyInputs:
        return self.checkpoint.expects

    def predict(self, obs: Observation, seed: int | None = None, prefix: ChunkPrefix | None = None,
                clock: StageClock | None = None) -> Prediction:
        """`clock`: one whose marks synchronise the device, for the bench's stage split (default: plain)."""
        ck = self.checkpoint
        ck.check_observation(obs)
        plan_for = None
        if prefix is not None:
            check_prefix(prefix, ck.stats.action.dim)
            head = ck.policy._groot_model.action_head

            def plan_for(dtype: Any, device: Any) -> PrefixPlan:
                return PrefixPlan.build(prefix, self.rtc, ck.stats.action.normalize, head.config.action_horizon,
                                        head.config.action_dim, device, dtype)
        clock = clock or StageClock()
        batch = ck.preprocessor(ck.batch_for(obs))
        clock.mark("preprocess")
        with seeded(seed, ck.device), rtc_head(ck.policy, plan_for) as plans, model_stage_marks(ck.policy, clock):
            normalized = ck.policy.predict_action_chunk(batch)[0].float().cpu().numpy()
        chunk = ck.stats.action.denormalize(normalized)
        if plans:
            normalized, chunk = frozen_rows(normalized, chunk, prefix, plans[-1])
        clock.mark("denormalize")
        return Prediction(normalized=normalized, chunk=chunk, timings=clock.timings())
