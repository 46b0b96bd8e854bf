"""make demo --dagger's plain parts: when the demonstrator takes over, which boxes the round uses, the trivial
policy it is compared with."""

from __future__ import annotations

import numpy as np

from groot_ros.demo.closed_loop import eval_boxes
from groot_ros.demo.dagger import HoldHome, TakeoverRule, collection_boxes
from groot_ros.demo.demonstrator import BOX_LATERAL_M, start_pose


def test_the_takeover_rule_names_why():
    rule = TakeoverRule(grasp_by_s=6.0, place_by_s=12.0)
    assert rule.reason(5.9, "on_pallet", False) == ""
    assert rule.reason(6.1, "on_pallet", False) == "no grasp within 6 s"
    assert rule.reason(6.1, "on_pallet", True) == ""  # grasped once (then put down on the pallet: dropped)
    assert rule.reason(1.0, "dropped", True) == "put the box down off the conveyor"
    assert rule.reason(12.1, "grasped", True) == "not placed within 12 s"
    assert rule.reason(30.0, "placed", True) == ""


def test_the_round_collects_on_boxes_the_evaluation_never_uses():
    collected, evaluated = collection_boxes(0, 10), eval_boxes(0, 20)
    assert len(set(collected)) == 10 and not set(collected) & set(evaluated)
    assert all(abs(lateral) <= BOX_LATERAL_M for lateral, _ in collected)
    assert collection_boxes(0, 3) == collected[:3]  # more boxes extend the same list


def test_hold_home_is_the_start_pose_every_row(depalletize_layout):
    chunk = HoldHome(depalletize_layout).predict_chunk(None)
    assert chunk.shape == (depalletize_layout.chunk_size, len(depalletize_layout.action_names))
    np.testing.assert_array_equal(chunk, np.tile(start_pose(depalletize_layout), (len(chunk), 1)))
