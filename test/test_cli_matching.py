"""The offline tools choose the layout, cameras and task the way the node does, and print its start-up block."""

from __future__ import annotations

import pytest

from groot_ros.cli import main
from groot_ros.testing.named_checkpoint import THEIR_TASK, make_their_checkpoint

OURS_BEFORE = ("head_cam_h", "wrist_cam_l", "wrist_cam_r")  # groot_ros's camera names before 2026-01


@pytest.fixture(scope="module")
def wheel_checkpoint(tmp_path_factory):
    """16/16 (arms + claws) with the users' cameras cam_head/cam_left/cam_right and their training data."""
    return make_their_checkpoint(tmp_path_factory.mktemp("wheel") / "ckpt", "arms_claws", "5_wheel")


def _predict(capsys, checkpoint, *extra):
    code = main(["predict", "--checkpoint", str(checkpoint.pretrained_model), "--robot", "5_wheel", "--seed", "0",
                 "--repeats", "1", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_predict_chooses_the_layout_as_the_node_does(capsys, wheel_checkpoint):
    code, out, err = _predict(capsys, wheel_checkpoint)
    assert code == 0, err
    assert "layout   arms_claws: state 16" in err and "feature names" in err
    assert "camera   observation.images.cam_head <- head" in err
    assert f"task     '{THEIR_TASK}' <- training data" in err
    assert "Left_claw" in out and "Cmd_pose_z" not in out


def test_a_named_layout_takes_the_checkpoint_cameras(capsys, wheel_checkpoint):
    code, out, err = _predict(capsys, wheel_checkpoint, "--layout", "arms_claws")
    assert code == 0, err
    assert "<- given (layout:=)" in err and "Left_claw" in out


def test_a_named_layout_that_does_not_fit_is_refused(capsys, wheel_checkpoint):
    code, _, err = _predict(capsys, wheel_checkpoint, "--layout", "depalletize")
    assert code == 2 and "state dim: checkpoint 16, layout 'depalletize' 18" in err


def test_our_older_camera_names_still_load(capsys, tmp_path):
    old = make_their_checkpoint(tmp_path / "old", "arms_claws", "5_wheel", cameras=OURS_BEFORE)
    for extra in ((), ("--layout", "arms_claws")):
        code, out, err = _predict(capsys, old, *extra)
        assert code == 0, err
        assert "camera   observation.images.head_cam_h <- head" in err and "Left_claw" in out
