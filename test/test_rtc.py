"""Real-time chunking in the engines (policy/rtc.py): the prefix's delay rows come back exactly, the guided rows
move toward the prefix, seeded calls repeat, both engines agree, and our guided step is LeRobot 0.4.2's RTC step
in GR00T's time convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from groot_ros.core.prefix import ChunkPrefix
from groot_ros.policy.rtc import RtcOptions, guidance_weight, guided_velocity, prefix_weights
from groot_ros.policy.runtime import GrootRuntime
from groot_ros.policy.tiny import synthetic_observation


@pytest.fixture(scope="module")
def engines(tiny_checkpoint, depalletize_layout):
    stock = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
    fast = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout, fast=True)
    return {"stock": stock, "fast": fast}


def _prefix(runtime, obs, delay=3, rows=10):
    """The rows another chunk planned (seed 2), three rows on: a plan the seed-1 chunk disagrees with."""
    other = runtime.predict_chunk(obs, seed=2)
    return ChunkPrefix(other[3:3 + rows].astype(np.float32), delay)


@pytest.mark.parametrize("method", ["guided", "prefix"])
@pytest.mark.parametrize("engine", ["stock", "fast"])
def test_frozen_rows_are_the_prefix_and_a_seed_repeats(engines, engine, method, depalletize_layout):
    runtime = engines[engine]
    runtime.rtc = RtcOptions(method=method)
    obs = synthetic_observation(depalletize_layout)
    prefix = _prefix(runtime, obs)
    first = runtime.predict(obs, seed=1, prefix=prefix)
    np.testing.assert_array_equal(first.chunk[:3], prefix.actions[:3])  # exactly, in robot units
    np.testing.assert_allclose(first.normalized[:3], runtime.stats.action.normalize(prefix.actions[:3]), atol=1e-6)
    np.testing.assert_array_equal(runtime.predict_chunk(obs, seed=1, prefix=prefix), first.chunk)
    free = runtime.predict(obs, seed=1)
    target = runtime.stats.action.normalize(prefix.actions)
    # The first guided row (the chunk boundary once the frozen rows have run) is pulled toward the plan.
    assert np.abs(first.normalized[3] - target[3]).max() < np.abs(free.normalized[3] - target[3]).max()
    assert np.abs(free.chunk[:3] - prefix.actions[:3]).max() > 1e-3  # without the prefix it would differ


def test_both_engines_give_the_same_rtc_chunk(engines, depalletize_layout):
    obs = synthetic_observation(depalletize_layout)
    prefix = _prefix(engines["stock"], obs)
    for method in ("guided", "prefix"):
        chunks = []
        for runtime in engines.values():
            runtime.rtc = RtcOptions(method=method)
            chunks.append(runtime.predict_chunk(obs, seed=4, prefix=prefix))
        np.testing.assert_allclose(chunks[0], chunks[1], atol=1e-4)


def test_no_prefix_rows_beyond_the_delay_and_a_wrong_width_is_refused(engines, depalletize_layout):
    runtime = engines["stock"]
    obs = synthetic_observation(depalletize_layout)
    chunk = runtime.predict_chunk(obs, seed=1)
    all_frozen = ChunkPrefix(chunk[:5].astype(np.float32), 5)
    np.testing.assert_array_equal(runtime.predict_chunk(obs, seed=3, prefix=all_frozen)[:5], all_frozen.actions)
    with pytest.raises(ValueError, match="17 action dims, the checkpoint 18"):
        runtime.predict_chunk(obs, seed=1, prefix=ChunkPrefix(np.zeros((4, 17), np.float32), 1))


def test_guided_step_is_lerobots_rtc_step_in_groot_time():
    """LeRobot's RTCProcessor.denoise_step runs time from 1 (noise) to 0 with v = noise - data; ours runs GR00T's
    t from 0 to 1 with v = data - noise. Same numbers for time = 1 - t and the velocity's sign flipped."""
    from lerobot.configs.types import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig
    from lerobot.policies.rtc.modeling_rtc import RTCProcessor

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 32, generator=gen)
    target = torch.randn(1, 16, 32, generator=gen)
    matrix = torch.randn(32, 32, generator=gen) * 0.1

    def v_groot(a):
        return a @ matrix + 0.3

    for max_weight in (1.0, 4.0, 10.0):
        options = RtcOptions(max_guidance_weight=max_weight)
        lerobot = RTCProcessor(RTCConfig(prefix_attention_schedule=RTCAttentionSchedule.EXP,
                                         max_guidance_weight=max_weight, execution_horizon=10))
        weights = torch.as_tensor(prefix_weights(options, 3, 10, 16), dtype=torch.float32)[None, :, None]
        for t in (0.0, 0.25, 0.5, 0.75):
            ours = guided_velocity(x, v_groot(x), t, target, weights.expand(1, 16, 32), max_weight)
            theirs = -lerobot.denoise_step(x, target, 3, 1.0 - t, lambda a: -v_groot(a), execution_horizon=10)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert [round(guidance_weight(t, 10.0), 3) for t in (0.0, 0.25, 0.5, 0.75)] == [10.0, 3.333, 2.0, 3.333]


def test_prefix_weights_frozen_then_decay_then_free():
    guided = prefix_weights(RtcOptions(method="guided", schedule="linear"), 2, 6, 8)
    np.testing.assert_allclose(guided, [1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0])
    native = prefix_weights(RtcOptions(method="prefix"), 2, 6, 8)
    np.testing.assert_allclose(native[:2], 1.0)
    np.testing.assert_allclose(native[2:6], np.exp(-6.0 * np.arange(1, 5) / 4))
    np.testing.assert_array_equal(native[6:], 0.0)
    with pytest.raises(ValueError, match="method must be one of"):
        RtcOptions(method="inpaint")
