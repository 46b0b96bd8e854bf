"""Operator takeover and deployment recording in the runner (simulated time, the real LeRobot writer): while taken
over nothing is sent and the operator's commands are recorded as the actions; the policy comes back from the
measured pose without a jump; every frame slot of the run is in the dataset, handovers included."""

from __future__ import annotations

import numpy as np

from groot_ros.core.layout import read_field
from groot_ros.execution.recording import RunRecording
from groot_ros.tools.deployment_recorder import DeploymentRecorder
from test_runner import Rig

OPERATOR_OFFSET = 0.3  # rad on the first arm joint: what the operator's teleoperation commands


def recorded_rig(tmp_path, success=None) -> tuple[Rig, DeploymentRecorder]:
    rig = Rig()
    recorder = DeploymentRecorder(tmp_path / "runs", rig.layout, fps=10, video=False)
    rig.runner.recording = RunRecording(recorder, 10, rig.store, "Depalletize the box", lambda: success)

    def operator(pose: np.ndarray) -> np.ndarray:
        out = pose.copy()
        out[0] += OPERATOR_OFFSET
        return out

    rig.runner.operator_command = operator
    return rig, recorder


def operator_moves_the_arm(rig: Rig) -> None:
    """From now on the joints stream reports the first arm joint OPERATOR_OFFSET further: the operator moved it."""
    joints = next(c for c in rig.layout.state if c.name == "J_q")
    feed = rig.feed

    def moved() -> None:
        feed()
        msg = rig.store.latest(joints.stream).msg
        read_field(msg, joints.field)[joints.indices[0]] += OPERATOR_OFFSET

    rig.feed = moved


def test_two_takeovers_record_the_operators_commands_and_hand_back_without_a_jump(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rig, recorder = recorded_rig(tmp_path, success=True)
    runner = rig.runner
    assert runner.start().ok
    rig.run(1.0)
    before, _ = runner.measured_pose()
    for hold_s in (0.5, 0.3):
        taken = runner.takeover(True)
        assert taken.ok and taken.state == "operator"
        sent = len(rig.sent)
        if hold_s == 0.5:
            operator_moves_the_arm(rig)
        rig.run(hold_s)
        pose, _ = runner.measured_pose()
        assert len(rig.sent) == sent  # the node commands nothing while the operator does
        assert runner.status().state == "operator"
        back = runner.takeover(False)
        assert back.ok and back.state == "running", back.message
        rig.run(0.5)
        first = rig.sent[sent][1]
        step = rig.settings.safety.max_joint_velocity * rig.settings.execution.tick_dt
        assert np.abs(first - pose).max() <= step + 1e-9  # from the measured pose (the ramp), not the old plan
    saved = runner.end_episode(keep=True)
    assert saved.ok and "task done" in saved.message
    assert recorder.close(timeout=60) and recorder.status().frames_dropped == 0

    ds = LeRobotDataset("local/runs", root=tmp_path / "runs")
    # 1 + 0.5 + 0.5 + 0.3 + 0.5 s at 10 fps: every slot, across both handovers
    assert ds.num_frames == 28
    operator = np.array([bool(ds[i]["intervention"]) for i in range(ds.num_frames)])
    assert operator.sum() == 8 and operator[10:15].all() and operator[20:23].all()
    assert pose[0] == before[0] + OPERATOR_OFFSET
    for i in np.flatnonzero(operator):  # the operator's command, over the pose measured then (already moved)
        assert float(ds[int(i)]["action"][0]) == np.float32(pose[0] + OPERATOR_OFFSET)
        assert np.isnan(ds[int(i)]["policy_action"].numpy()).all()
    assert not np.isnan(ds[5]["policy_action"].numpy()).any()


def test_hand_back_is_refused_while_an_input_is_stale_and_discard_drops_the_episode(tmp_path):
    rig, recorder = recorded_rig(tmp_path)
    runner = rig.runner
    assert not runner.takeover(True).ok  # nothing to take over before a start
    assert runner.start().ok
    rig.run(0.5)
    assert runner.takeover(True).ok
    rig.stale.add("joints")
    rig.run(1.0)
    refused = runner.takeover(False)
    assert not refused.ok and refused.state == "operator" and "joints" in refused.message
    assert "discarded" in runner.end_episode(keep=False).message
    rig.stale.clear()
    rig.run(0.2)
    assert runner.takeover(False).ok
    stopped = runner.stop("end of trial")
    assert "episode saved" in stopped.message
    assert recorder.close(timeout=60) and recorder.status().episodes_saved == 1


def test_the_claw_latch_holds_through_a_takeover_and_frees_at_the_next_start():
    rig = Rig(claw_latch={"enabled": True})
    claws = rig.layout.action_indices("claw")
    rig.policy.pose = rig.policy.pose.copy()
    rig.policy.pose[claws] = 60.0  # the policy asks "closed", above the users' threshold of 50
    runner = rig.runner
    assert runner.start().ok
    rig.run(1.0)
    assert rig.sent[-1][1][claws].tolist() == [90.0, 90.0]  # latched after 5 model steps of "closed"
    rig.policy.pose[claws] = 20.0  # now the policy would open them mid-carry
    assert runner.takeover(True).ok
    rig.run(0.3)
    assert runner.takeover(False).ok
    rig.run(1.0)
    assert rig.sent[-1][1][claws].tolist() == [90.0, 90.0]  # still latched: the episode goes on
    runner.stop("end of trial")
    assert runner.start().ok
    rig.run(1.0)
    assert rig.sent[-1][1][claws].tolist() == [20.0, 20.0]  # a new episode: free again
