"""Checkpoints saved by our users' fork load on stock LeRobot and predict what the fork's own code predicts.

The fixtures (test/fixtures/fork_heads/, SOURCE.json names the fork commit each came from) were written by
scripts/make_fork_fixtures.py running the fork's model code; these tests never need the fork.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from groot_ros.core.observation import Observation
from groot_ros.policy.action_heads import (FORK_MULTI, FORK_SHARED, FORK_SHARED_XATTN, FORK_SPLIT, LEROBOT, HeadError,
                                           detect_head, read_weight_shapes)
from groot_ros.policy.checkpoint import CheckpointError
from groot_ros.policy.matching import choose_layout
from groot_ros.policy.runtime import GrootRuntime

FIXTURES = Path(__file__).parent / "fixtures" / "fork_heads"
EXPECTED_VARIANT = {"main_multi": FORK_MULTI, "dev_split": FORK_SPLIT, "dev_shared": FORK_SHARED,
                    "dev_shared_xattn": FORK_SHARED_XATTN}
FORKS = sorted(EXPECTED_VARIANT)
# Same weights, seed and inputs: bit-identical on this machine in both engines; 1e-6 leaves room for another BLAS.
ATOL = 1e-6


def fixture_cases(name: str) -> tuple[str, list[tuple[Observation, int, np.ndarray]]]:
    data = np.load(FIXTURES / name / "expected.npz")
    task = str(data["task"])
    cases = []
    for i in range(len({k.split(".")[0] for k in data.files if k.startswith("case")})):
        images = {k[len(f"case{i}."):]: data[k] for k in data.files
                  if k.startswith(f"case{i}.observation.images.")}
        obs = Observation(state=data[f"case{i}.state"].astype(np.float64), images=images, task=task)
        cases.append((obs, int(data[f"case{i}.noise_seed"]), data[f"case{i}.normalized"]))
    return task, cases


def load(name: str, fast: bool = False) -> GrootRuntime:
    ckpt = FIXTURES / name / "pretrained_model"
    return GrootRuntime.load(ckpt, choose_layout(ckpt, "5_wheel", "sim").layout, fast=fast)


def test_fixtures_name_their_fork_commit():
    for name in FORKS:
        source = json.loads((FIXTURES / name / "SOURCE.json").read_text())
        assert source["fork"] == "KKXiaoKang/humanoid_groot" and len(source["commit"]) == 40
        assert source["branch"] == name.split("_")[0]


@pytest.mark.parametrize("name", FORKS)
def test_head_variant_is_read_from_the_weight_names(name):
    head = detect_head(read_weight_shapes(FIXTURES / name / "pretrained_model" / "model.safetensors"))
    assert head.variant is EXPECTED_VARIANT[name]
    assert head.action_dim == 16 and head.encoder_dim == 32
    assert head.ignored and all(".task_log_sigma." in k for k in head.ignored)


def test_base_config_does_not_name_the_variant():
    """What a user has: the fork decided from its own defaults, the saved configs say nothing of it."""
    cfg = json.loads((FIXTURES / "base_model" / "config.json").read_text())["action_head_cfg"]
    assert not {"use_multi_action_heads", "split_arm_heads", "use_cross_attention_arms"} & set(cfg)


@pytest.mark.parametrize("name", FORKS)
@pytest.mark.parametrize("fast", [False, True], ids=["stock", "fast"])
def test_fork_checkpoint_predicts_the_forks_chunks(name, fast):
    runtime = load(name, fast)
    assert runtime.head.variant is EXPECTED_VARIANT[name]
    _, cases = fixture_cases(name)
    for obs, seed, theirs in cases:
        ours = runtime.predict(obs, seed=seed)
        np.testing.assert_allclose(ours.normalized, theirs, atol=ATOL, rtol=0)
        np.testing.assert_allclose(ours.chunk, runtime.stats.action.denormalize(theirs), atol=1e-4, rtol=0)


def test_padded_dims_matter_so_the_zeroing_is_checked():
    """Without the fork's zeroing of the padded dims the chunk differs: the comparison above can fail."""
    runtime = load("main_multi")
    obs, seed, theirs = fixture_cases("main_multi")[1][0]
    runtime.policy._groot_model.action_head.action_encoder._forward_pre_hooks.clear()
    assert np.abs(runtime.predict(obs, seed=seed).normalized - theirs).max() > 10 * ATOL


def test_stock_head_checkpoint_is_lerobots(tiny_runtime):
    head = detect_head(read_weight_shapes(tiny_runtime.info.path / "model.safetensors"))
    assert head.variant is LEROBOT and head.action_dim == 32 and not head.ignored
    assert tiny_runtime.head == head and callable(tiny_runtime.policy._groot_model.action_head.action_decoder.forward)


def test_unknown_head_lists_the_unexpected_weights_and_the_known_heads(tmp_path):
    shapes = read_weight_shapes(FIXTURES / "main_multi" / "pretrained_model" / "model.safetensors")
    renamed = {k.replace("action_claw_decoder", "action_gripper_decoder"): s for k, s in shapes.items()}
    with pytest.raises(HeadError) as err:
        detect_head(renamed)
    text = str(err.value)
    assert "_groot_model.action_head.action_gripper_decoder.layer1.W" in text
    for variant in (LEROBOT, FORK_MULTI, FORK_SPLIT, FORK_SHARED):
        assert variant.name in text
    assert "base config" not in text


def test_unknown_head_is_a_load_error_without_the_base_config_hint(tmp_path):
    from safetensors.numpy import load_file, save_file

    ckpt = tmp_path / "run" / "pretrained_model"
    shutil.copytree(FIXTURES / "main_multi" / "pretrained_model", ckpt)
    for name in ("base_model", "eagle_assets"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
    weights = load_file(str(ckpt / "model.safetensors"))
    save_file({k.replace("task_log_sigma.arm", "task_log_sigma.gripper"): v for k, v in weights.items()},
              str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        GrootRuntime.load(ckpt, choose_layout(ckpt, "5_wheel", "sim").layout)
    assert "task_log_sigma.gripper" in str(err.value) and "--base-config" not in str(err.value)


def test_multi_head_on_an_18_dim_checkpoint_is_refused():
    from groot_ros.policy.action_heads import head_problems

    head = detect_head(read_weight_shapes(FIXTURES / "main_multi" / "pretrained_model" / "model.safetensors"))
    problem = head_problems(head, 18)
    assert problem and "16 action dims (arm 14 + claw 2)" in problem[0] and "18" in problem[0]


def test_predict_cli_prints_the_forks_chunk_without_layout():
    """`predict --checkpoint <fork checkpoint> --robot 5_wheel --seed 0`: the layout comes from the checkpoint."""
    ckpt = FIXTURES / "main_multi" / "pretrained_model"
    runtime = load("main_multi")
    task, cases = fixture_cases("main_multi")
    out = subprocess.run([sys.executable, "-m", "groot_ros", "predict", "--checkpoint", str(ckpt), "--robot",
                          "5_wheel", "--seed", "0", "--task", task, "--repeats", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "  head     fork multi-head [humanoid_groot main]: arm 14 + claw 2 of 32 padded dims" in out.stderr
    # The synthetic observation `predict` feeds is ours; check its chunk through the API against the CLI's.
    from groot_ros.policy.tiny import synthetic_observation

    chunk = runtime.predict_chunk(synthetic_observation(runtime.layout, task=task), seed=0)
    assert f"{chunk[0, 0]:.3f}" in out.stdout or f"{chunk[0, 0]:.4f}" in out.stdout, out.stdout


@pytest.mark.slow
def test_eval_dataset_runs_on_a_fork_checkpoint(tmp_path):
    from groot_ros.testing.bags import write_bags
    from groot_ros.testing.named_checkpoint import their_layout
    from groot_ros.tools.bag2lerobot import ConvertOptions, convert
    from groot_ros.tools.eval_dataset import EvalOptions, evaluate

    runtime = load("main_multi")
    layout = their_layout("arms_claws", "4_pro")  # the bag writer needs a joint count; the dataset is the same
    write_bags(tmp_path / "bags", layout, count=1, seconds=2.0)
    convert([tmp_path / "bags"], tmp_path / "dataset", layout, ConvertOptions(task="Depalletize the box"),
            progress=False)
    result = evaluate(runtime, tmp_path / "dataset", tmp_path / "eval", EvalOptions(action_chunk_size=8, plots=False),
                      progress=False)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics and result is not None
