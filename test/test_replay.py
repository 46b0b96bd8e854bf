"""replay-episode: a recorded episode (synthetic bags -> bag2lerobot) through the node's command path, against the
stand-in on the real topic set; the dry run (the default) commands nothing, --execute follows the recording."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
import yaml

from groot_ros.testing.bags import write_bags
from conftest import REPO, start_sim

pytestmark = [pytest.mark.ros, pytest.mark.slow]
MODE = "/kuavo_loopback_sim/arm_ctrl_mode"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, depalletize_layout):
    from groot_ros.tools.bag2lerobot import ConvertOptions, convert

    folder = tmp_path_factory.mktemp("replay_bags")
    write_bags(folder, depalletize_layout, count=1, seconds=3.0)
    root = tmp_path_factory.mktemp("replay_ds") / "kuavo"
    convert([folder], root, depalletize_layout, ConvertOptions(task="Depalletize the box", fps=10), progress=False)
    return root


class Commands:
    """Everything that reaches a command topic, counted."""

    def __init__(self, rospy, layout):
        from groot_ros.ros.messages import message_class

        self.lock, self.counts = threading.Lock(), {}
        self.subs = [rospy.Subscriber(spec.topic, message_class(spec.msg_type), self._cb, callback_args=spec.topic)
                     for spec in layout.commands.values()]

    def _cb(self, _msg, topic):
        with self.lock:
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def close(self):
        for sub in self.subs:
            sub.unregister()


def replay(dataset, tmp_path, *extra: str) -> tuple[int, str, dict]:
    report = tmp_path / f"report{len(extra)}.json"
    proc = subprocess.run([sys.executable, "-m", "groot_ros", "replay-episode", "--dataset-root", str(dataset),
                           "--episode", "0", "--report", str(report), *extra],
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    out = proc.stdout + proc.stderr
    return proc.returncode, out, json.loads(report.read_text()) if report.is_file() else {}


def test_replay_episode_dry_run_commands_nothing_and_execute_follows(ros_node, depalletize_layout, dataset,
                                                                     tmp_path):
    rospy = ros_node
    sim = start_sim(tmp_path / "sim.log", "_topics:=real")
    commands = Commands(rospy, depalletize_layout)
    try:
        code, out, report = replay(dataset, tmp_path)  # the default: dry run on the real topic set
        assert code == 0, out
        assert report["dry_run"] and report["follow"] == {} and report["restored"] is None, report
        assert "DRY RUN" in out and "nothing commanded" in out, out
        assert commands.total() == 0, f"a dry run sent commands: {commands.counts}"
        assert rospy.get_param(MODE) == 1, "a dry run switched the arm mode"
        assert report["ticks"] == 291  # 30 frames at 10 fps: rows 0..29 -> 2.9 s at 100 Hz, both ends
        # the synthetic recording swings arm joint 1 faster than the envelope's 1 rad/s: the plan says so
        assert report["clamped"] and set(report["clamps"]["rate"]) >= {"Left_arm_0", "Right_arm_0"}, report
        planned = report["envelope"]

        (tmp_path / "fast.yaml").write_text(yaml.safe_dump({"startup": {"head_settle_s": 0.2, "move_time_s": 1.0,
                                                                        "max_joint_velocity": 0.8}}))
        code, out, report = replay(dataset, tmp_path, "--execute", "--direct-to-wbc",
                                   "--execution-overrides", str(tmp_path / "fast.yaml"))
        print(out)
        assert code == 0, out + (tmp_path / "sim.log").read_text()[-2000:]
        assert not report["dry_run"] and report["restored"] is True, report
        assert "arm mode restored to 1 (read back)" in report["exit"], report["exit"]
        assert rospy.get_param(MODE) == 1 and rospy.get_param("/kuavo_loopback_sim/wbc_arm_trajectory_control") == 0
        assert report["ticks"] == 291 and commands.total() > 291
        follow = report["follow"]
        # the stand-in tracks arms with a 50 ms time constant: at this episode's joint speeds (< 1 rad/s) the
        # lag is a few hundredths of a radian; a wrong resampling, unit or joint order would be tenths to radians
        for arm in ("Left_arm", "Right_arm"):
            assert follow[arm]["samples"] == 291
            assert follow[arm]["rms"] < 0.05 and follow[arm]["max"] < 0.15, follow[arm]
        assert follow["Cmd_pose_z"]["max"] < 0.02 and follow["Cmd_pose_pitch"]["max"] < 0.1, follow
        # claws step 0 -> 100 half-way (their controller needs ~0.5 s): the RMS says whether they got there
        assert follow["Left_claw"]["rms"] < 25, follow["Left_claw"]
        assert report["clamped"] and set(report["clamps"]["rate"]) >= {"Left_arm_0", "Right_arm_0"}, report
        for name, error in report["envelope"].items():  # the dry run planned what was sent
            assert error["max"] == pytest.approx(planned[name]["max"], abs=1e-3), (name, error, planned[name])
    finally:
        commands.close()
        sim.proc.terminate()
        sim.proc.wait(timeout=20)
