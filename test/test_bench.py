"""The inference benchmark and the optimized path: outputs equal to the stock LeRobot path, on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from groot_ros.bench.policy import BenchConfig, format_report, run_bench
from groot_ros.cli import main
from groot_ros.policy.tiny import synthetic_observation
from groot_ros.policy.fast import (
    DiTKVCache,
    FastOptions,
    ImageSpec,
    _pipeline_step,
    fast_engine,
    preprocess_images,
)
from groot_ros.policy.runtime import GrootRuntime

ALL_OFF = FastOptions(bf16_weights=False, gpu_preprocess=False, skip_lm_head=False, kv_cache=False)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def obs(depalletize_layout):
    return synthetic_observation(depalletize_layout, seed=3)


@pytest.fixture(scope="module")
def stock_runtime(tiny_checkpoint, depalletize_layout):
    return GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)


def test_harness_and_cli_time_every_stage_and_match(tiny_checkpoint, tmp_path, capsys):
    cfg = BenchConfig(checkpoint=tiny_checkpoint.pretrained_model, workdir=tmp_path, warmup=1, iters=2, ablation=True)
    report = run_bench(cfg)
    assert [p.name for p in report.paths] == ["stock", "only gpu_preprocess", "only skip_lm_head", "only kv_cache",
                                              "ours"]
    for path in report.paths:
        assert {"preprocess", "backbone", "action_head", "denormalize"} <= set(path.stages)
        assert path.end_to_end.p50 > 0 and path.end_to_end.p99 >= path.end_to_end.p50 and path.peak_memory_mb > 0
    assert report.passed(), [p.rel_error for p in report.paths]
    table = format_report(report)
    assert "x stock" in table and "within tolerance" in table

    out = tmp_path / "bench.json"
    code = main(["bench-policy", "--checkpoint", str(tiny_checkpoint.pretrained_model), "--warmup", "0",
                 "--iters", "1", "--json", str(out)])
    assert code == 0
    assert "end_to_end" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["passed"] and [p["name"] for p in data["paths"]] == ["stock", "ours"]
    assert set(data["paths"][1]["stages"]) == {"preprocess", "backbone", "action_head", "denormalize"}


@pytest.mark.parametrize("options", [FastOptions(), ALL_OFF, FastOptions(gpu_preprocess=False),
                                     FastOptions(skip_lm_head=False), FastOptions(kv_cache=False)],
                         ids=["all", "none", "no-gpu-preprocess", "no-skip-lm-head", "no-kv-cache"])
def test_fast_path_equals_stock_fp32(tiny_checkpoint, depalletize_layout, stock_runtime, obs, options):
    reference = stock_runtime.predict(obs, seed=7)
    runtime = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
    engine = fast_engine(runtime.checkpoint, options)
    ours = engine.predict(obs, seed=7)
    assert ours.normalized.shape == reference.normalized.shape == (16, depalletize_layout.action_dim)
    assert _rel(ours.normalized, reference.normalized) < 1e-5
    assert _rel(ours.chunk, reference.chunk) < 1e-5
    np.testing.assert_allclose(engine.predict_chunk(obs, seed=7), ours.chunk)
    assert _rel(engine.predict(obs, seed=8).normalized, reference.normalized) > 1e-3  # the seed matters


def test_bf16_weights_match_lerobot_autocast(tiny_checkpoint, depalletize_layout, obs):
    stock = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
    stock.policy.config.use_bf16 = True  # LeRobot's inference mode: fp32 weights under bf16 autocast
    stock.policy._groot_model.compute_dtype = "bfloat16"
    reference = stock.predict(obs, seed=1)
    runtime = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout, dtype="bfloat16")
    engine = fast_engine(runtime.checkpoint, FastOptions())
    assert next(runtime.policy.parameters()).dtype == torch.bfloat16
    assert _rel(engine.predict(obs, seed=1).normalized, reference.normalized) < 1e-2


def test_gpu_image_preprocessing_equals_stock_pixel_values(stock_runtime, obs, monkeypatch):
    """Raw 480x640 frames straight into the stock pipeline, so its bicubic resize to the tile size is exercised."""
    def stock_pixels() -> torch.Tensor:
        batch = {"observation.state": torch.as_tensor(obs.state, dtype=torch.float32), "task": obs.task}
        batch.update({k: torch.from_numpy(obs.images[k]).permute(2, 0, 1) for k in stock_runtime.info.camera_keys})
        return stock_runtime.preprocessor(batch)["eagle_pixel_values"]

    encode = _pipeline_step(stock_runtime.preprocessor, "GrootEagleEncodeStep")
    spec = ImageSpec.from_processor(encode.proc.image_processor)
    frames = torch.stack([torch.from_numpy(obs.images[k]) for k in stock_runtime.info.camera_keys])
    stock = stock_pixels()
    assert spec.mode == "bicubic" and spec.size == stock.shape[-1] < frames.shape[1]
    torch.testing.assert_close(preprocess_images(frames, spec), stock, rtol=0, atol=0)

    # The float arithmetic used on a GPU: the stock processor gives the same once torchvision's CPU-only
    # uint8 kernel is out of the way, and stays within one uint8 step of that kernel otherwise.
    as_on_gpu = preprocess_images(frames, spec, native_uint8=False)
    assert (as_on_gpu - stock).abs().max() <= 1 / 127.5 + 1e-6
    import torchvision.transforms.v2.functional._geometry as geometry

    monkeypatch.setattr(geometry, "_do_native_uint8_resize_on_cpu", lambda interpolation: False)
    torch.testing.assert_close(as_on_gpu, stock_pixels(), rtol=0, atol=1e-6)


def test_dit_kv_cache_gives_the_same_actions(tiny_checkpoint, depalletize_layout, stock_runtime, obs):
    batch = stock_runtime.preprocessor(stock_runtime.batch_for(obs))
    torch.manual_seed(5)
    reference = stock_runtime.policy.predict_action_chunk(batch)
    runtime = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
    dit = runtime.policy._groot_model.action_head.model
    cache = DiTKVCache(dit)
    assert len(cache.pairs) == (len(dit.transformer_blocks) + 1) // 2  # interleaved: even blocks cross-attend
    torch.manual_seed(5)
    unbound = runtime.policy.predict_action_chunk(batch)  # installed but unbound: the stock processor
    torch.testing.assert_close(unbound, reference, rtol=0, atol=0)

    features = torch.randn(1, 9, dit.config.cross_attention_dim)
    tokens = torch.randn(1, 5, dit.inner_dim)
    t = torch.full((1,), 250)
    plain = dit(hidden_states=tokens, encoder_hidden_states=features, timestep=t)
    cache.bind(features)
    cached = dit(hidden_states=tokens, encoder_hidden_states=features, timestep=t)
    cache.release()
    torch.testing.assert_close(cached, plain, rtol=1e-5, atol=1e-6)
    assert all(p.kv is None for _, p in cache.pairs)


def test_full_size_config_has_the_published_dimensions(depalletize_layout, tmp_path):
    from groot_ros.bench.full_model import MODEL_SIZES, count_parameters, full_eagle_config, tokens_per_tile

    counts = count_parameters(MODEL_SIZES["full"], depalletize_layout, tmp_path)
    assert 2.6e9 < counts["total"] < 2.8e9  # "~2.7B" with Qwen3's lm_head untied
    assert 0.41e9 < counts["vision"] < 0.44e9 and 0.9e9 < counts["llm"] < 0.93e9  # 12 of 28 Qwen3 layers
    eagle = full_eagle_config({"vocab_size": 400, "<IMG_CONTEXT>": 5, "<|endoftext|>": 0, "<|im_end|>": 2})
    assert tokens_per_tile(eagle) == 64
    processor = json.loads((tmp_path / "eagle_assets" / "processor_config.json").read_text())
    assert processor["tokens_per_tile"] == 64
    base = json.loads((tmp_path / "base_model" / "config.json").read_text())
    head = base["action_head_cfg"]
    dit, vl = head["diffusion_model_cfg"], head["vl_self_attention_cfg"]
    assert dit["num_attention_heads"] * dit["attention_head_dim"] == head["input_embedding_dim"] == 1536
    assert vl["num_attention_heads"] * vl["attention_head_dim"] == head["backbone_embedding_dim"] \
        == eagle["text_config"]["hidden_size"] == dit["cross_attention_dim"] == 2048
    assert dit["output_dim"] == head["hidden_size"] and head["max_num_embodiments"] > 31
    assert base["backbone_cfg"]["select_layer"] == 12 and dit["num_layers"] == 16


def test_kernel_families_name_the_kernels_the_gpu_profile_showed():
    from groot_ros.bench.policy import kernel_family

    assert kernel_family("nvjet_sm90_tst_24x64_64x16_4x1_v_bz_bias_TNN") == "matmul"
    assert kernel_family("void cublasLt::splitKreduce_kernel<32, 16, int, float>") == "matmul"
    assert kernel_family("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7") == "attention"
    assert kernel_family("void at::native::vectorized_elementwise_kernel<8, at::native::bfloat16_copy_kernel_cuda("
                         "at::TensorIteratorBase&)>") == "copy/cast/index"
    assert kernel_family("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float>") == "norm"
    assert kernel_family("triton_per_fused_add_mul_0") == "triton (fused)"
    assert kernel_family("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>") \
        == "elementwise"


def test_extra_rows_fresh_noise_profile_and_a_failing_variant(tiny_checkpoint, tmp_path):
    """--also adds rows; ours is also timed unseeded; a variant that raises (CUDA graphs on the CPU) is reported
    as failed without losing the others."""
    lines = []
    cfg = BenchConfig(checkpoint=tiny_checkpoint.pretrained_model, workdir=tmp_path, warmup=1, iters=2,
                      also=("cuda_graphs",), profile=1)
    report = run_bench(cfg, log=lines.append)
    assert [p.name for p in report.paths] == ["stock", "ours"]
    assert "ours +cuda_graphs" in report.failed and "CUDA" in report.failed["ours +cuda_graphs"]
    assert not report.passed()
    ours = report.paths[1]
    assert ours.fresh_noise is not None and ours.fresh_noise.p50 > 0 and report.stock.fresh_noise is None
    assert ours.profile is not None and ours.profile["wall_ms"] > 0 and ours.profile["calls"] == 1
    assert any(line.startswith("ours: end to end p50") for line in lines)  # logged as soon as timed
    table = format_report(report)
    assert "fresh_noise" in table and "ours +cuda_graphs: FAILED" in table and "torch" in table
    assert main(["bench-policy", "--checkpoint", str(tiny_checkpoint.pretrained_model), "--warmup", "0",
                 "--iters", "1", "--also", "cuda_graphs"]) == 1


def test_node_path_times_observation_build_and_unseeded_predict(tiny_checkpoint, depalletize_layout):
    from groot_ros.bench.node_path import NodePathConfig, format_node_path, run_node_path

    result = run_node_path(NodePathConfig(checkpoint=tiny_checkpoint.pretrained_model, warmup=1, chunks=3),
                           depalletize_layout)
    assert result["engine"] == "groot_ros fast" and result["seed"] is None
    ms = result["ms"]
    assert 0 < ms["observation_build"]["p50"] and 0 < ms["predict_chunk"]["p50"] <= ms["inference"]["p50"]
    assert "predict_chunk" in format_node_path(result)
