"""Closed loop against a real master: the stand-in sim, both command backends, the arm-mode handshake.

The sim runs as its own process (nodes/kuavo_loopback_sim); this process is one rospy node that feeds
an ObservationStore from the sim's topics through ros.subscribers, exactly as the policy node does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from groot_ros.ros.backends.config import BackendError, load_backend_config
from groot_ros.ros.backends.factory import make_backend
from groot_ros.core.layout import load_layout
from groot_ros.testing.polling import poll_until

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
SIM_NS = "/kuavo_loopback_sim"
# Inside the URDF limits, away from rest (zeros) so convergence means the command took effect.
ARM_TARGET = np.radians([-30, 10, 5, -40, 0, -10, 0, -20, -15, -5, -50, 0, 10, 0])
CLAW_TARGET = np.array([30.0, 70.0])
TORSO_TARGET = np.array([-0.1, 0.15])


@pytest.fixture(scope="module")
def layout():
    return load_layout("depalletize", "4_pro", "sim")


def test_sdk_backend_refuses_clearly_without_gait_node(ros_node, layout, monkeypatch):
    """Runs before the sim exists: KuavoSDK().Init() would exit() the test process here."""
    backend = make_backend("sdk", layout)
    with pytest.raises(BackendError, match="node /humanoid_gait_switch_by_name is not running"):
        backend.start()
    monkeypatch.setenv("ROS_MASTER_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(BackendError, match="no ROS master at http://127.0.0.1:9"):
        make_backend("sdk", layout).start()


@pytest.fixture(scope="module")
def sim(roscore, ros_node):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(REPO / "nodes" / "kuavo_loopback_sim")], env=env, cwd=REPO,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import rosgraph

    master = rosgraph.Master("/groot_ros_test")

    def ready() -> bool:
        try:
            master.lookupNode("/humanoid_gait_switch_by_name")
            return master.hasParam(SIM_NS + "/arm_ctrl_mode")
        except rosgraph.MasterError:
            return False

    if not poll_until(ready, 15, period=0.1):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"sim did not come up: {proc.stderr.read().decode()[-2000:] if proc.poll() is not None else 'still starting'}")
    yield proc
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def store(sim, layout, ros_node):
    from groot_ros.ros.subscribers import subscribe_store
    from groot_ros.core.store import ObservationStore

    s = ObservationStore(layout)
    subs = subscribe_store(s)
    assert poll_until(lambda: s.build_observation(ros_node.get_time(), "t").ok, 10), \
        s.build_observation(ros_node.get_time(), "t").summary()
    yield s
    for sub in subs:
        sub.unregister()


@pytest.fixture
def recorder(ros_node):
    """Records what goes out on the command topics (what the robot would receive)."""
    from geometry_msgs.msg import Twist
    from sensor_msgs.msg import JointState

    from groot_ros.ros import messages as km

    seen: dict[str, list] = {"arm": [], "claw": [], "torso": []}
    subs = [ros_node.Subscriber("/kuavo_arm_traj", JointState, seen["arm"].append),
            ros_node.Subscriber("/leju_claw_command", km.lejuClawCommand, seen["claw"].append),
            ros_node.Subscriber("/cmd_pose", Twist, seen["torso"].append)]
    yield seen
    for sub in subs:
        sub.unregister()


def observe(store, ros_node):
    result = store.build_observation(ros_node.get_time(), "t")
    assert result.ok, result.summary()
    return result.observation


def sim_mode(ros_node) -> tuple[int, int]:
    return ros_node.get_param(SIM_NS + "/arm_ctrl_mode"), ros_node.get_param(SIM_NS + "/wbc_arm_trajectory_control")


def test_sim_offers_the_kuavo_interface(sim, store, ros_node):
    from groot_ros.ros import messages as km

    assert ros_node.get_param("/robot_version") == 45 and ros_node.get_param("/armRealDof") == 14
    assert 'name="zarm_l4_joint"' in ros_node.get_param("/humanoid_description")
    for service in ("/arm_traj_change_mode", "/humanoid_change_arm_ctrl_mode", "/control_robot_leju_claw",
                    "/enable_wbc_arm_trajectory_control", "/humanoid_get_arm_ctrl_mode"):
        ros_node.wait_for_service(service, timeout=2)
    stamps: list[float] = []
    sub = ros_node.Subscriber("/sensors_data_raw", km.sensorsData, lambda m: stamps.append(m.header.stamp.to_sec()))
    assert poll_until(lambda: len(stamps) >= 50, 10), f"{len(stamps)} messages on /sensors_data_raw"
    sub.unregister()
    # The stand-in's rate by its own stamps (200 Hz): the median spacing, which a late scheduler does not move.
    period = float(np.median(np.diff(stamps[-40:])))
    assert 0.8 / 200 <= period <= 1.25 / 200, f"/sensors_data_raw every {period * 1e3:.1f} ms"
    msg = ros_node.wait_for_message("/sensors_data_raw", km.sensorsData, timeout=2)
    assert len(msg.joint_data.joint_q) == 28
    from sensor_msgs.msg import CompressedImage

    jpeg = ros_node.wait_for_message("/camera/color/image_raw/compressed", CompressedImage, timeout=2)
    assert jpeg.format == "jpeg" and jpeg.data[:2] == b"\xff\xd8"
    obs = observe(store, ros_node)
    assert obs.images["observation.images.cam_head"].shape == (96, 128, 3)


def run_closed_loop(backend, store, ros_node, recorder):
    """start -> stream one chunk step until the sim's state reaches it -> shutdown."""
    before = observe(store, ros_node)
    backend.start()  # external control, read back; direct-to-WBC stays off until the measured pose was sent
    assert sim_mode(ros_node) == (2, 0)
    backend.send({"arm": before.state[:14]})
    time.sleep(0.2)
    assert backend.arm_mode.set_direct_to_wbc(True)[0]
    assert sim_mode(ros_node) == (2, 1)
    channels = {"arm": ARM_TARGET, "claw": CLAW_TARGET, "torso": TORSO_TARGET}
    target_state = np.concatenate([ARM_TARGET, CLAW_TARGET])

    def converged() -> bool:
        obs = store.build_observation(ros_node.get_time(), "t").observation
        return obs is not None and np.allclose(obs.state[:16], target_state, atol=0.02) \
            and abs(obs.state[16] - (0.8328 + TORSO_TARGET[0])) < 0.01 and abs(obs.state[17] - TORSO_TARGET[1]) < 0.01

    assert poll_until(converged, 8, every=lambda: backend.send(channels)), observe(store, ros_node).state
    after = observe(store, ros_node)
    report = backend.shutdown()
    assert report.ok and "arm mode restored to 1 (read back)" in str(report), report
    assert sim_mode(ros_node) == (1, 0)  # auto swing back, direct-to-WBC off
    # The scene follows the arms: the head image changed.
    key = "observation.images.cam_head"
    assert np.abs(after.images[key].astype(int) - before.images[key]).sum() > 0
    arm_msg = recorder["arm"][-1]
    assert len(arm_msg.name) == 14
    np.testing.assert_allclose(arm_msg.position, np.degrees(ARM_TARGET), atol=1e-9)


@pytest.mark.parametrize("kind", ["topics", "sdk"])
def test_backend_closed_loop(kind, sim, store, ros_node, recorder, layout):
    config = load_backend_config(direct_to_wbc=True)
    backend = make_backend(kind, layout, config)
    run_closed_loop(backend, store, ros_node, recorder)
    claw = recorder["claw"][-1] if recorder["claw"] else None
    if kind == "topics":  # the SDK sends claws through /control_robot_leju_claw, not the topic
        assert list(claw.data.position) == CLAW_TARGET.tolist()
        assert list(claw.data.velocity) == [90.0, 90.0] and list(claw.data.effort) == [1.0, 1.0]
        assert list(recorder["arm"][-1].name) == list(layout.robot.arm_joint_names)
    twist = recorder["torso"][-1]
    assert (twist.linear.z, twist.angular.y) == tuple(TORSO_TARGET)
    # After shutdown the arms are no longer externally controlled: they return to rest (auto swing).
    assert poll_until(lambda: np.allclose(observe(store, ros_node).state[:14], 0.0, atol=0.02), 5)
    sent = len(recorder["arm"])
    backend.send({"arm": ARM_TARGET})  # not in external control any more: arm commands are not sent
    time.sleep(0.2)
    assert len(recorder["arm"]) == sent
    backend.disconnect()  # later nodes on this master refuse to start while we publish on their command topics


def test_controller_rules_arm_commands(sim, store, ros_node):
    """14 names exactly, external mode only: otherwise the arms do not move."""
    from sensor_msgs.msg import JointState

    from groot_ros.ros import messages as km

    pub = ros_node.Publisher("/kuavo_arm_traj", JointState, queue_size=10)
    set_mode = ros_node.ServiceProxy("/arm_traj_change_mode", km.changeArmCtrlMode)
    target = np.degrees(ARM_TARGET).tolist()
    names = [f"arm_joint_{i}" for i in range(14)]

    def stream(msg_names, seconds=0.5):
        poll_until(lambda: False, seconds, every=lambda: pub.publish(JointState(name=msg_names, position=target)))
        return observe(store, ros_node).state[:14]

    try:
        assert np.allclose(stream(names), 0.0, atol=1e-3)  # auto swing mode (1): ignored
        assert set_mode(control_mode=2).result
        assert np.allclose(stream(names[:13]), 0.0, atol=1e-3)  # 13 names: rejected
        assert np.allclose(stream(names, 1.5), ARM_TARGET, atol=0.02)
        assert not set_mode(control_mode=7).result
    finally:
        assert set_mode(control_mode=1).result
        pub.unregister()  # later tests' nodes refuse to start while another node publishes on /kuavo_arm_traj
    assert poll_until(lambda: np.allclose(observe(store, ros_node).state[:14], 0.0, atol=0.02), 5)
