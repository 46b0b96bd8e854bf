"""Damaged or implausible inputs get an error naming the file, stream or dims (issue 23), or a hold as invalid input.

Checkpoints are copies of the session's tiny checkpoint with one thing broken; sensor cases go through the node's
ObservationStore and (for the hold) the runner in simulated time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from groot_ros.policy.checkpoint import CheckpointError


@pytest.fixture
def ckpt(tiny_checkpoint, tmp_path) -> Path:
    """A copy of the tiny checkpoint's folder (base config and assets beside it); returns its pretrained_model."""
    root = Path(tiny_checkpoint.pretrained_model).parent
    shutil.copytree(root, tmp_path / root.name)
    return tmp_path / root.name / Path(tiny_checkpoint.pretrained_model).name


def test_a_broken_config_json_is_named(ckpt, depalletize_layout):
    from groot_ros.policy.matching import choose_layout
    from groot_ros.policy.runtime import LoadedCheckpoint

    (ckpt / "config.json").write_text('{"type": "groot", ')
    for load in (lambda: choose_layout(ckpt, "4_pro", "sim"), lambda: LoadedCheckpoint.load(ckpt, depalletize_layout)):
        with pytest.raises(CheckpointError, match=rf"{ckpt / 'config.json'} is not a readable JSON file"):
            load()


def test_a_truncated_model_safetensors_is_named(ckpt, depalletize_layout):
    from groot_ros.policy.runtime import LoadedCheckpoint

    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{weights} is not a readable safetensors file"):
        LoadedCheckpoint.load(ckpt, depalletize_layout)


def _stats_file(ckpt: Path, processor: str, step: str) -> Path:
    data = json.loads((ckpt / processor).read_text())
    return ckpt / next(s["state_file"] for s in data["steps"] if s.get("registry_name") == step)


def test_inconsistent_statistics_are_a_start_up_error_naming_the_dims(ckpt, depalletize_layout):
    from safetensors.numpy import load_file, save_file

    from groot_ros.policy.checkpoint import PACK_STEP, UNNORMALIZE_STEP
    from groot_ros.policy.runtime import LoadedCheckpoint

    post = _stats_file(ckpt, "policy_postprocessor.json", UNNORMALIZE_STEP)
    tensors = load_file(str(post))
    tensors["action.min"][14], tensors["action.max"][14] = 100.0, 0.0  # Left_claw: min > max
    tensors["action.max"][0] = 1e6  # Left_arm_0
    save_file(tensors, str(post))
    pre = _stats_file(ckpt, "policy_preprocessor.json", PACK_STEP)
    tensors = load_file(str(pre))
    tensors["observation.state.min"][15] = -1e6  # Claw_pos_1
    save_file(tensors, str(pre))
    with pytest.raises(CheckpointError) as err:
        LoadedCheckpoint.load(ckpt, depalletize_layout)
    text = str(err.value)
    assert "action statistics with min > max: Left_claw (min 100 > max 0)" in text, text
    assert "action statistics far beyond the robot's range: Left_arm_0 max 1e+06" in text, text
    assert "state statistics far beyond the robot's range: Claw_pos_1 min -1e+06 (robot range 0..100)" in text, text


def test_the_training_datasets_fps_sets_the_model_step(ckpt):
    from groot_ros.policy.matching import choose_layout, describe

    data = ckpt.parent / "data30"
    (data / "meta").mkdir(parents=True)
    (data / "meta" / "info.json").write_text(json.dumps({"fps": 30, "features": {}}))
    (ckpt / "train_config.json").write_text(json.dumps({"dataset": {"repo_id": "local/data30", "root": str(data)}}))
    choice = choose_layout(ckpt, "4_pro", "sim")
    assert choice.layout.model_action_dt == pytest.approx(1 / 30)
    assert "model step 0.0333 s from the training dataset's fps 30 (layout 'depalletize' says 0.1 s)" in \
        describe(choice, "t", "t")


def _store_with(layout, claws=None, head=None):
    from groot_ros.bench.node_path import camera_message, stream_messages
    from groot_ros.core.store import ObservationStore

    store = ObservationStore(layout, decode_size={c.name: (56, 56) for c in layout.cameras})
    msgs = stream_messages(layout, 100.0, np.random.default_rng(0))
    if claws is not None:
        msgs["claws"].data.position = list(claws)
    for name, msg in msgs.items():
        store.update(name, msg, 100.0)
    for cam in layout.cameras:
        frame = head if head is not None and cam.name == "head" else np.zeros((48, 64, 3), np.uint8)
        store.update(cam.name, camera_message(frame, 100.0), 100.0)
    return store


@pytest.mark.parametrize("claws, shown", [((150.0, 50.0), "Claw_pos_0=150"), ((50.0, -20.0), "Claw_pos_1=-20")])
def test_an_out_of_range_claw_state_is_invalid_input(depalletize_layout, claws, shown):
    store = _store_with(depalletize_layout, claws=claws)
    pose, why = store.measured_action()
    assert pose is None and why == f"sensor value invalid: claws (/leju_claw_state) {shown} outside 0..100", why
    result = store.build_observation(100.0, "t")
    assert not result.ok and "claws (/leju_claw_state): range" in result.summary()
    assert _store_with(depalletize_layout, claws=(100.0, 0.0)).measured_action()[0] is not None


def test_an_out_of_range_claw_state_holds_the_runner():
    from test_runner import Rig

    class ClawRig(Rig):
        claw = None

        def feed(self):
            super().feed()
            if self.claw is not None:
                msg = self.store.latest("claws").msg
                msg.data.position = [self.claw, 0.0]

    rig = ClawRig()
    rig.runner.start()
    rig.run(0.5)
    rig.claw = 150.0
    rig.run(0.2)
    status = rig.runner.status()
    assert status.state == "holding" and "Claw_pos_0=150 outside 0..100" in status.reason, status


def test_a_frame_far_smaller_than_the_model_input_is_refused(depalletize_layout):
    result = _store_with(depalletize_layout, head=np.zeros((1, 1, 3), np.uint8)).build_observation(100.0, "t")
    assert not result.ok
    assert "head (/camera/color/image_raw): image: frame 1x1 is far smaller than the model's input 56x56" in \
        result.summary()
    assert _store_with(depalletize_layout).build_observation(100.0, "t").ok  # 48x64 for 56x56: fine
