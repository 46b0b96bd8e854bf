"""The offline GR00T runtime: tiny checkpoint round trip, de-normalization, validation errors, no network."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest

from groot_ros.policy.tiny import synthetic_observation
from groot_ros.core.layout import load_layout
from groot_ros.policy.attention import choose_attention
from groot_ros.core.normalization import MinMax
from groot_ros.core.observation import Observation
from groot_ros.core.paths import config_dir
from groot_ros.policy.base import ObservationError
from groot_ros.policy.checkpoint import CheckpointError
from groot_ros.policy.runtime import GrootRuntime


def copy_checkpoint(tiny, tmp_path):
    root = tmp_path / "ckpt"
    shutil.copytree(tiny.root, root)
    return root


def test_round_trip_predicts_a_whole_denormalized_chunk(tiny_runtime, depalletize_layout):
    obs = synthetic_observation(depalletize_layout)
    chunk = tiny_runtime.predict_chunk(obs, seed=3)
    assert chunk.shape == (16, 18)
    assert np.all(np.isfinite(chunk))
    np.testing.assert_array_equal(chunk, tiny_runtime.predict_chunk(obs, seed=3))
    assert not np.allclose(chunk, tiny_runtime.predict_chunk(obs, seed=4))
    # Every row, not only the last one, is in robot units: the denormalization of the model's raw chunk.
    raw = tiny_runtime.predict_normalized(obs, seed=3)
    np.testing.assert_allclose(chunk, tiny_runtime.stats.action.denormalize(raw))
    assert len({tuple(row) for row in np.round(chunk, 6)}) > 1


def test_last_row_matches_lerobot_postprocessor(tiny_runtime, tiny_checkpoint, depalletize_layout):
    """LeRobot's own postprocessor keeps only the last row; ours must agree with it there."""
    import torch
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    post = PolicyProcessorPipeline.from_pretrained(
        str(tiny_checkpoint.pretrained_model), config_filename="policy_postprocessor.json",
        to_transition=policy_action_to_transition, to_output=transition_to_policy_action)
    obs = synthetic_observation(depalletize_layout)
    raw = tiny_runtime.predict_normalized(obs, seed=5)
    stock_last = post(torch.as_tensor(raw[None], dtype=torch.float32)).numpy()[0]
    ours = tiny_runtime.predict_chunk(obs, seed=5)
    np.testing.assert_allclose(ours[-1], stock_last, rtol=1e-5, atol=1e-4)


def test_denormalize_matches_formula_including_max_equal_min():
    stats = MinMax(np.array([-1.0, 0.0, 5.0]), np.array([1.0, 100.0, 5.0]))
    y = np.array([[[-1.0, -1.0, 0.3], [0.0, 0.5, -0.7], [1.0, 1.0, 1.0]]])  # (1, 3 steps, 3 dims)
    expected = np.array([[[-1.0, 0.0, 5.0], [0.0, 75.0, 5.0], [1.0, 100.0, 5.0]]])
    np.testing.assert_allclose(stats.denormalize(y), expected)
    x = np.array([0.25, 40.0, 5.0])
    np.testing.assert_allclose(stats.denormalize(stats.normalize(x)), x)
    assert stats.normalize(x)[2] == 0.0
    with pytest.raises(ValueError, match="last dimension"):
        stats.denormalize(np.zeros((16, 4)))


def test_checkpoint_stats_are_the_datasets(tiny_runtime, depalletize_layout):
    from groot_ros.policy.tiny import default_stats

    expected = default_stats(depalletize_layout)
    np.testing.assert_allclose(tiny_runtime.stats.action.min, expected["action"]["min"], rtol=1e-6)
    np.testing.assert_allclose(tiny_runtime.stats.state.max, expected["observation.state"]["max"], rtol=1e-6)


def test_gpu_saved_checkpoint_loads_on_cpu(tiny_checkpoint, tiny_runtime, depalletize_layout, tmp_path):
    root = copy_checkpoint(tiny_checkpoint, tmp_path)
    ckpt = root / "pretrained_model"
    for name in ("policy_preprocessor.json", "policy_postprocessor.json"):
        data = json.loads((ckpt / name).read_text())
        for step in data["steps"]:
            if step.get("registry_name") == "device_processor":
                step["config"]["device"] = "cuda"
        (ckpt / name).write_text(json.dumps(data))
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["device"] = "cuda"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    assert '"cuda"' in (ckpt / "policy_preprocessor.json").read_text()
    runtime = GrootRuntime.load(ckpt, depalletize_layout, device="cpu")
    obs = synthetic_observation(depalletize_layout)
    np.testing.assert_allclose(runtime.predict_chunk(obs, seed=1), tiny_runtime.predict_chunk(obs, seed=1))


def test_wrong_dims_and_missing_asset_reported_together(tiny_checkpoint, tmp_path):
    root = copy_checkpoint(tiny_checkpoint, tmp_path)
    (root / "eagle_assets" / "merges.txt").unlink()
    layout16 = load_layout("arms_claws", "4_pro", "sim")
    with pytest.raises(CheckpointError) as err:
        GrootRuntime.load(root / "pretrained_model", layout16)
    msg = str(err.value)
    assert "state dim: checkpoint 18, layout 'arms_claws' 16" in msg
    assert "action dim: checkpoint 18, layout 'arms_claws' 16" in msg
    assert "merges.txt" in msg and "--eagle-assets" in msg


def test_missing_stats_is_a_clear_error(tiny_checkpoint, depalletize_layout, tmp_path):
    root = copy_checkpoint(tiny_checkpoint, tmp_path)
    for f in (root / "pretrained_model").glob("policy_postprocessor_step_*.safetensors"):
        f.unlink()
    with pytest.raises(CheckpointError, match="postprocessor: no statistics file"):
        GrootRuntime.load(root / "pretrained_model", depalletize_layout)


def test_missing_base_config_names_it(tiny_checkpoint, depalletize_layout, tmp_path):
    root = copy_checkpoint(tiny_checkpoint, tmp_path)
    shutil.rmtree(root / "base_model")
    cfg_path = root / "pretrained_model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_path"] = "nvidia/GR00T-N1.5-3B"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="(?s)base model config .* not found.*--base-config"):
        GrootRuntime.load(root / "pretrained_model", depalletize_layout)


def test_camera_mismatch_between_layout_and_checkpoint(tiny_checkpoint, tmp_path):
    layout_yaml = tmp_path / "two_cams.yaml"
    text = (config_dir() / "layouts" / "depalletize.yaml").read_text()
    layout_yaml.write_text(text.replace("wrist_right: observation.images.cam_right\n", ""))
    layout = load_layout(layout_yaml, "4_pro", "sim")
    with pytest.raises(CheckpointError, match=r"checkpoint camera keys \['observation.images.cam_right'\]"):
        GrootRuntime.load(tiny_checkpoint.pretrained_model, layout)


def test_unknown_camera_key_and_bad_observations_rejected(tiny_runtime, depalletize_layout):
    good = synthetic_observation(depalletize_layout)
    extra = dict(good.images, **{"observation.images.chest": good.images["observation.images.cam_head"]})
    with pytest.raises(ObservationError, match="unknown camera keys"):
        tiny_runtime.predict_chunk(Observation(good.state, extra, good.task))
    with pytest.raises(ObservationError, match=r"state has shape \(16,\)"):
        tiny_runtime.predict_chunk(Observation(good.state[:16], good.images, good.task))
    nan_state = good.state.copy()
    nan_state[15] = np.nan
    with pytest.raises(ObservationError, match="NaN/inf in \\['Claw_pos_1'\\]"):
        tiny_runtime.predict_chunk(Observation(nan_state, good.images, good.task))
    float_img = dict(good.images, **{"observation.images.cam_head": np.zeros((48, 64, 3), np.float32)})
    with pytest.raises(ObservationError, match="must be uint8 HxWx3"):
        tiny_runtime.predict_chunk(Observation(good.state, float_img, good.task))


def test_weights_load_strictly(tiny_checkpoint, depalletize_layout, tmp_path):
    from safetensors.torch import load_file, save_file

    root = copy_checkpoint(tiny_checkpoint, tmp_path)
    weights = root / "pretrained_model" / "model.safetensors"
    tensors = load_file(str(weights))
    dropped = sorted(k for k in tensors if "action_decoder" in k)[0]
    del tensors[dropped]
    tensors["_groot_model.extra.weight"] = tensors[sorted(tensors)[0]].clone()
    save_file(tensors, str(weights))
    with pytest.raises(CheckpointError, match=r"1 missing keys .*action_decoder.*1 unexpected keys .*extra"):
        GrootRuntime.load(root / "pretrained_model", depalletize_layout)


def test_no_network_during_load_and_predict(no_network, tiny_checkpoint, depalletize_layout):
    runtime = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout)
    runtime.predict_chunk(synthetic_observation(depalletize_layout), seed=0)
    assert no_network == []


def test_network_guard_catches_attempts(no_network):
    with pytest.raises(AssertionError, match="network connection attempted"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    no_network.clear()


def test_attention_choice_without_flash_attn():
    assert choose_attention("cpu").implementation == "sdpa"
    assert choose_attention("cuda").implementation in ("sdpa", "flash_attention_2")
    with pytest.raises(ValueError, match="needs the flash_attn package and a CUDA device"):
        choose_attention("cpu", "flash_attention_2")


def test_cameras_of_different_sizes_are_brought_to_the_trained_size(tiny_runtime, depalletize_layout):
    obs = synthetic_observation(depalletize_layout)
    images = dict(obs.images)
    images["observation.images.cam_left"] = images["observation.images.cam_left"][:240, :320].copy()
    images["observation.images.cam_head"].setflags(write=False)  # as a ROS message buffer
    chunk = tiny_runtime.predict_chunk(Observation(obs.state, images, obs.task), seed=0)
    assert chunk.shape == (16, 18) and np.all(np.isfinite(chunk))


def test_fast_path_through_the_runtime_matches_stock(tiny_checkpoint, tiny_runtime, depalletize_layout):
    fast = GrootRuntime.load(tiny_checkpoint.pretrained_model, depalletize_layout, fast=True)
    assert fast.engine.name == "groot_ros fast"
    obs = synthetic_observation(depalletize_layout)
    stock = tiny_runtime.predict_chunk(obs, seed=2)
    ours = fast.predict_chunk(obs, seed=2)
    assert np.linalg.norm(ours - stock) / np.linalg.norm(stock) < 1e-4
    timings = fast.predict(obs, seed=2).timings
    assert timings.model_ms > 0 and timings.preprocess_ms > 0
    np.testing.assert_allclose(fast.stats.action.denormalize(fast.predict_normalized(obs, seed=2)), ours, atol=1e-6)


def test_missing_processor_file_names_it_and_the_statistics(tiny_checkpoint, depalletize_layout, tmp_path):
    root = copy_checkpoint(tiny_checkpoint, tmp_path)
    (root / "pretrained_model" / "policy_postprocessor.json").unlink()
    with pytest.raises(CheckpointError) as err:
        GrootRuntime.load(root / "pretrained_model", depalletize_layout)
    assert "lacks policy_postprocessor.json" in str(err.value)
    assert "no min/max statistics for observation.state and action" in str(err.value)
