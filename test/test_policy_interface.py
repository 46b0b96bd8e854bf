"""The policy room's contract: one interface (base.ChunkPolicy) for both engines, fresh noise on every unseeded
call and exact repeats with a seed, and an attention override that refuses what it was not written for."""

from __future__ import annotations

import numpy as np
import pytest

from groot_ros.policy.attention import AttentionError, check_transformers, verify_attention
from groot_ros.policy.base import ChunkPolicy, PolicyInputs
from groot_ros.policy.runtime import GrootRuntime
from groot_ros.policy.tiny import synthetic_observation


@pytest.fixture(scope="module")
def engines(tiny_checkpoint, depalletize_layout):
    stock = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
    fast = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout, fast=True)
    return {"stock": stock, "fast": fast}


@pytest.mark.parametrize("engine", ["stock", "fast"])
def test_unseeded_calls_draw_fresh_noise_and_a_seed_repeats(engines, engine, depalletize_layout):
    runtime = engines[engine]
    obs = synthetic_observation(depalletize_layout)
    a, b = runtime.predict_chunk(obs), runtime.predict_chunk(obs)
    assert np.abs(a - b).max() > 1e-6, f"{engine}: two unseeded chunks are identical (frozen noise)"
    np.testing.assert_array_equal(runtime.predict_chunk(obs, seed=7), runtime.predict_chunk(obs, seed=7))
    # A seeded call leaves the global generator alone: the unseeded stream goes on, not restarts.
    c = runtime.predict_chunk(obs)
    assert np.abs(c - a).max() > 1e-6 and np.abs(c - b).max() > 1e-6


@pytest.mark.parametrize("engine", ["stock", "fast"])
def test_both_engines_are_chunk_policies(engines, engine, depalletize_layout):
    runtime = engines[engine]
    assert isinstance(runtime, ChunkPolicy) and isinstance(runtime.engine, ChunkPolicy)
    assert runtime.expects == PolicyInputs(18, 18, tuple(depalletize_layout.camera_keys), 16)
    obs = synthetic_observation(depalletize_layout)
    prediction = runtime.predict(obs, seed=1)
    np.testing.assert_allclose(prediction.chunk, runtime.stats.action.denormalize(prediction.normalized), atol=1e-5)
    stages = set(prediction.timings.stages_ms)
    assert {"preprocess", "backbone", "action_head", "denormalize"} <= stages and prediction.timings.total_ms > 0
    assert prediction.timings.model_ms > 0 and prediction.timings.preprocess_ms > 0
    runtime.reset()
    np.testing.assert_allclose(runtime.predict_chunk(obs, seed=1), prediction.chunk, atol=1e-6)


def test_attention_override_refuses_other_transformers_releases():
    def hook(self, attn_implementation, is_init_check=False):
        return attn_implementation

    check_transformers("4.57.6", hook)
    with pytest.raises(AttentionError, match="not one groot_ros's attention override was written for"):
        check_transformers("4.58.0", hook)
    with pytest.raises(AttentionError, match="differs"):
        check_transformers("4.57.1", lambda self, attn_implementation, check_device_map=False: None)
    with pytest.raises(AttentionError, match="has no"):
        check_transformers("4.57.1", None)


def test_attention_is_checked_on_the_built_model(engines):
    model = engines["stock"].policy
    built = verify_attention(model, "sdpa")
    assert any(k.endswith("vision_model") for k in built) and any(k.endswith("language_model") for k in built)
    with pytest.raises(AttentionError, match="instead of flash_attention_2"):
        verify_attention(model, "flash_attention_2")
