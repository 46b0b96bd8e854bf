"""The stand-in's task over ROS: ~reset_task / ~box_offset start an episode, ~task_phase and ~task_success
follow a grasp, carry and place commanded through the topics backend."""

from __future__ import annotations

import numpy as np
import pytest

from groot_ros.ros.backends.factory import make_backend
from groot_ros.sim.task import both_arms, grasp_arms, grasp_pose_deg
from groot_ros.testing.polling import poll_until
from test_kuavo_ros import layout, sim  # noqa: F401 - module fixtures: a sim of this module's own

pytestmark = pytest.mark.ros


def test_phase_and_success_topics_follow_the_task(sim, ros_node, layout):  # noqa: F811
    from groot_ros.demo.recording import reset_task, task_outcome

    box = (0.03, -0.01)
    reset_task(box)
    assert task_outcome() == ("on_pallet", False)
    backend = make_backend("topics", layout)
    backend.start()
    carry = grasp_pose_deg(box)
    carry[2] = 250.0 * 0.2  # over the conveyor
    try:
        for arm, claw, phase in ((grasp_arms(box), 0.0, "on_pallet"), (grasp_arms(box), 90.0, "grasped"),
                                 (both_arms(carry), 90.0, "grasped"), (both_arms(carry), 0.0, "placed")):
            command = {"arm": arm, "claw": np.full(2, claw), "torso": np.zeros(2)}
            assert poll_until(lambda: task_outcome()[0] == phase, 5, every=lambda: backend.send(command)), phase
        assert task_outcome() == ("placed", True)
        reset_task(box)  # the same box again: a new episode
        assert task_outcome() == ("on_pallet", False)
    finally:
        backend.shutdown()
