"""What we save names no path of the machine that saved it: a checkpoint copied elsewhere loads and predicts."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest


def absolute_paths(root: Path, machine: Path) -> dict[str, list[str]]:
    """Every JSON string under `root` that is an absolute or home-relative path or names `machine`, per file."""
    found: dict[str, list[str]] = {}

    def walk(value, out):
        if isinstance(value, dict):
            for v in value.values():
                walk(v, out)
        elif isinstance(value, list):
            for v in value:
                walk(v, out)
        elif isinstance(value, str) and (value.startswith(("/", "~")) or str(machine) in value):
            out.append(value)

    for path in sorted(root.rglob("*.json")):
        hits: list[str] = []
        walk(json.loads(path.read_text()), hits)
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def test_a_copied_tiny_checkpoint_loads_after_the_original_is_gone(tmp_path, depalletize_layout):
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.policy.tiny import synthetic_observation
    from groot_ros.policy.tiny import make_tiny_checkpoint

    original = make_tiny_checkpoint(tmp_path / "made_here" / "ckpt", depalletize_layout)
    assert absolute_paths(original.root, tmp_path) == {}
    config = json.loads((original.pretrained_model / "config.json").read_text())
    assert config["base_model_path"] == "nvidia/GR00T-N1.5-3B"  # LeRobot's hub ids, as users' checkpoints have
    assert config["tokenizer_assets_repo"] == "lerobot/eagle2hg-processor-groot-n1p5"
    obs = synthetic_observation(depalletize_layout, seed=1)
    before = GrootRuntime.load(original.pretrained_model, depalletize_layout).predict_chunk(obs, seed=0)

    copy = tmp_path / "elsewhere" / "ckpt"
    shutil.copytree(original.root, copy)
    shutil.rmtree(tmp_path / "made_here")
    runtime = GrootRuntime.load(copy / "pretrained_model", depalletize_layout)
    assert runtime.base_config == copy / "base_model" / "config.json"
    np.testing.assert_array_equal(runtime.predict_chunk(obs, seed=0), before)


@pytest.mark.slow
def test_a_trained_run_copied_with_its_dataset_loads_after_the_originals_are_gone(tmp_path, depalletize_layout):
    """What LeRobot's training saves through groot_ros (every step of a run) names no path of this machine: the
    checkpoint configs keep LeRobot's hub ids, the local base config and Eagle assets are copied beside each
    pretrained_model/, and train_config.json names the dataset relative to the run directory. Copied elsewhere
    (run and dataset in the same places relative to each other), it loads and still finds its dataset's names
    and task; a step directory copied alone loads too, matched by dims."""
    from groot_ros.cli import main
    from groot_ros.policy.matching import training_data
    from groot_ros.policy.runtime import GrootRuntime
    from groot_ros.testing.bags import write_bags
    from groot_ros.policy.tiny import synthetic_observation
    from groot_ros.tools.training import demo_train_options, make_tiny_base_model, train

    here = tmp_path / "made_here"
    bags = write_bags(tmp_path / "bags", depalletize_layout, count=1, seconds=2.0)
    assert main(["bag2lerobot", *map(str, bags), "--out", str(here / "data" / "ds"), "--task", "Depalletize."]) == 0
    base = make_tiny_base_model(here / "tiny")
    options = demo_train_options(here / "data" / "ds", here / "runs" / "run", base, steps=2)
    train(dataclasses.replace(options, batch_size=2, save_freq=1, log_freq=1), depalletize_layout)
    assert absolute_paths(here, tmp_path) == {}  # the dataset, the tiny base and both steps of the run

    last = here / "runs" / "run" / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((last / "config.json").read_text())
    assert (config["base_model_path"], config["tokenizer_assets_repo"]) == (
        "nvidia/GR00T-N1.5-3B", "lerobot/eagle2hg-processor-groot-n1p5")
    train_config = json.loads((last / "train_config.json").read_text())
    assert (train_config["dataset"]["root"], train_config["output_dir"]) == ("../../data/ds", ".")
    obs = synthetic_observation(depalletize_layout, seed=1)
    before = GrootRuntime.load(last, depalletize_layout).predict_chunk(obs, seed=0)

    there = tmp_path / "elsewhere"
    shutil.copytree(here / "runs", there / "runs", symlinks=True)
    shutil.copytree(here / "data", there / "data")
    shutil.copytree(here / "runs" / "run" / "checkpoints" / "000002", tmp_path / "alone" / "000002")
    shutil.rmtree(here)
    copy = there / "runs" / "run" / "checkpoints" / "last" / "pretrained_model"
    runtime = GrootRuntime.load(copy, depalletize_layout)
    assert runtime.base_config == copy.parent / "base_model" / "config.json"
    np.testing.assert_array_equal(runtime.predict_chunk(obs, seed=0), before)
    data = training_data(copy)
    assert data.root is not None and data.root.resolve() == (there / "data" / "ds").resolve()
    assert data.tasks == ("Depalletize.",)
    assert data.action_names == tuple(depalletize_layout.action_feature_names)

    alone = tmp_path / "alone" / "000002" / "pretrained_model"
    np.testing.assert_array_equal(GrootRuntime.load(alone, depalletize_layout).predict_chunk(obs, seed=0), before)
    assert training_data(alone).root is None  # its dataset was not copied: layout matching falls back to dims
