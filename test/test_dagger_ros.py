"""DAgger on the stand-in with the real node: a run with two operator takeovers is recorded as a LeRobot episode whose
intervention frames carry the operator's commands, the node commands nothing while taken over, and it hands back
only once no other node publishes on its command topics."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class Teleop:
    """The operator's teleoperation: streams one arm target (degrees) on the robot's arm topic at 50 Hz."""

    def __init__(self, rospy, target_deg: np.ndarray):
        from sensor_msgs.msg import JointState

        self.rospy, self.target = rospy, target_deg
        self.pub = rospy.Publisher("/kuavo_arm_traj", JointState, queue_size=10)
        self.msg_cls, self.done = JointState, threading.Event()
        self.thread = threading.Thread(target=self._stream, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10  # streaming to the robot and to the node before the operator takes over
        while self.pub.get_num_connections() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)

    def _stream(self) -> None:
        while not self.done.is_set():
            msg = self.msg_cls(position=list(self.target))
            msg.header.stamp = self.rospy.Time.now()
            self.pub.publish(msg)
            time.sleep(0.02)

    def end(self) -> None:
        self.done.set()
        self.thread.join()
        self.pub.unregister()


def takeover(rospy, on: bool):
    from std_srvs.srv import SetBool

    rospy.wait_for_service("/groot_policy/takeover", timeout=10)
    return rospy.ServiceProxy("/groot_policy/takeover", SetBool)(on)


def test_two_takeovers_become_intervention_frames_with_the_operators_commands(node_on_standin, tiny_checkpoint,
                                                                              tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rospy, node = node_on_standin.rospy, node_on_standin
    runs = tmp_path / "runs"
    node.start("sim_depalletize.launch", "seed:=0", f"record_dir:={runs}", "record_video:=false", sim=None,
               checkpoint=tiny_checkpoint.pretrained_model)
    node.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 90, "the first chunks")
    targets = []
    for k in range(2):
        with node.rec.lock:
            target = node.rec.arm[-1][1].copy()
        target[k] += 5.0  # degrees: the operator moves one joint a little
        targets.append(target)
        teleop = Teleop(rospy, target)
        taken = takeover(rospy, True)
        assert taken.success, taken.message
        node.wait_for(lambda s: s.state == "operator", 5, "operator state")
        with node.rec.lock:
            before = len(node.rec.arm)
        time.sleep(1.5)
        with node.rec.lock:
            theirs = node.rec.arm[before:]
        assert all(np.allclose(q, target) for _, q, _ in theirs[2:]), "the node commanded while taken over"
        teleop.end()
        deadline = time.monotonic() + 15  # until the master no longer lists the teleop as a publisher
        while not (back := takeover(rospy, False)).success and time.monotonic() < deadline:
            assert "another node" in back.message or "inputs not healthy" in back.message, back.message
            time.sleep(0.5)
        assert back.success, back.message
        chunks = node.rec.latest_status().chunks
        node.wait_for(lambda s: s.state == "running" and s.chunks >= chunks + 2, 30, "chunks after the hand-back")

    keys = subprocess.run([sys.executable, "-m", "groot_ros", "dagger-keys"], input="e\nq\n", text=True,
                          capture_output=True, timeout=60)  # the operator's keyboard: save the episode
    assert keys.returncode == 0, keys.stderr[-2000:]
    line = next(ln for ln in keys.stdout.splitlines() if ln.startswith("episode:"))
    assert line.startswith("episode: ok: episode saved"), keys.stdout
    saved = line.split("ok: ", 1)[1]
    status = node.rec.latest_status()
    assert node.call("stop").success
    assert node.stop_node() == 0, (node.folder / "launch.log").read_text()[-3000:]

    ds = LeRobotDataset("local/runs", root=runs)
    frames = int(saved.split("(")[1].split()[0])
    assert ds.num_episodes == 2 and ds.meta.episodes[0]["length"] == frames, saved  # ~stop saved the rest
    operator = np.array([bool(ds[i]["intervention"]) for i in range(frames)])
    starts = np.flatnonzero(np.diff(operator.astype(int)) == 1) + 1
    assert len(starts) == 2, operator.astype(int).tolist()
    for start, target in zip(starts, targets):
        end = start + np.argmin(operator[start:]) if not operator[start:].all() else len(operator)
        assert 12 <= end - start <= 30, (start, end)  # 1.5 s and the hand-back at 10 fps
        for i in range(start, end):  # every intervention frame: the operator's command, in radians
            np.testing.assert_allclose(ds[int(i)]["action"][:14].numpy(), np.radians(target), atol=1e-5)
            assert np.isnan(ds[int(i)]["policy_action"].numpy()).all()
    trial = json.loads((runs / "meta" / "trials.jsonl").read_text().splitlines()[0])
    assert trial["intervention_frames"] == int(operator.sum()) and trial["duration_s"] > 5
    assert trial["success"] in (True, False)  # the stand-in's verdict on its ~task_success
    assert "recorder" not in " ".join(status.stale_streams)


def node_pid(rospy) -> int:
    import xmlrpc.client

    import rosgraph

    uri = rosgraph.Master("/pid_check").lookupNode("/groot_policy")
    return xmlrpc.client.ServerProxy(uri).getPid("/pid_check")[2]


def test_twenty_trials_on_one_model_load(node_on_standin, tiny_checkpoint, tmp_path):
    rospy, node = node_on_standin.rospy, node_on_standin
    runs = tmp_path / "runs"
    node.start("sim_depalletize.launch", "seed:=0", "dry_run:=true", f"record_dir:={runs}", "record_video:=false",
               sim=None, checkpoint=tiny_checkpoint.pretrained_model)
    node.wait_for(lambda s: s.state == "running" and s.chunks >= 1, 90, "the first chunk")
    pid = node_pid(rospy)
    for trial in range(20):
        chunks = node.rec.latest_status().chunks
        node.wait_for(lambda s, c=chunks: s.state == "running" and s.chunks > c, 30, f"trial {trial} running")
        reset = node.call("reset")
        assert reset.success and "episode saved" in reset.message, reset.message
    assert node_pid(rospy) == pid  # the same process: the model was loaded once
    assert node.call("stop").success
    assert node.stop_node() == 0, (node.folder / "launch.log").read_text()[-3000:]
    trials = [json.loads(line) for line in (runs / "meta" / "trials.jsonl").read_text().splitlines()]
    assert len(trials) >= 20 and [t["episode_index"] for t in trials] == list(range(len(trials)))
    assert all(t["reason"].startswith("~reset") for t in trials[:20])


def test_the_demos_dagger_trial_hands_a_failing_policy_to_the_demonstrator(node_on_standin, tiny_checkpoint,
                                                                            tmp_path, depalletize_layout):
    """make demo --dagger's trial with the real node: a policy that does not grasp (the tiny test checkpoint) is
    taken over after the rule's time, its attempt discarded, and the demonstrator's recovery from the measured pose
    places the box; the saved episode is the demonstrator's frames, ending at home."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from groot_ros.demo.dagger import SceneWatch, TakeoverRule, run_box
    from groot_ros.demo.demonstrator import start_pose
    from groot_ros.ros.backends.factory import make_backend
    from groot_ros.sim.launcher import SIM_NODE

    node, layout = node_on_standin, depalletize_layout
    runs = tmp_path / "runs"
    node.start("sim_depalletize.launch", "seed:=0", "start_paused:=true", f"record_dir:={runs}",
               "record_video:=false", sim=None, checkpoint=tiny_checkpoint.pretrained_model)
    node.wait_for(lambda s: s.state == "idle", 90, "the paused start")
    backend, scene = make_backend("topics", layout), SceneWatch(SIM_NODE)
    backend.start()
    try:
        log = run_box((0.04, 0.0), layout, backend, scene, TakeoverRule(grasp_by_s=3.0, place_by_s=10.0), 9.0,
                      node.watched)
    finally:
        scene.close()
        backend.shutdown()
        backend.disconnect()
    assert log.takeover == "no grasp within 3 s" and log.phase_at_takeover == "on_pallet", log
    assert log.phase == "placed" and log.success, log
    assert node.stop_node() == 0, (node.folder / "launch.log").read_text()[-3000:]

    ds = LeRobotDataset("local/runs", root=runs)
    assert ds.num_episodes == 1  # the policy's attempt was discarded
    operator = np.array([bool(ds[i]["intervention"]) for i in range(ds.num_frames)])
    assert operator[-int(0.9 * len(operator)):].all() and len(operator) >= 60, operator.astype(int).tolist()
    last = ds[ds.num_frames - 1]["action"].numpy()
    np.testing.assert_allclose(last, start_pose(layout), atol=0.02)  # the recovery ends at home
    trial = json.loads((runs / "meta" / "trials.jsonl").read_text().splitlines()[0])
    assert trial["success"] is True and trial["intervention_frames"] == int(operator.sum())
