"""What we save names no path of the machine that saved it: a checkpoint copied elsewhere loads and predicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np


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
    from groot_ros.testing.synthetic import synthetic_observation
    from groot_ros.testing.tiny_checkpoint import make_tiny_checkpoint

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
