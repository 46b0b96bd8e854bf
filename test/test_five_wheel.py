"""The wheel-arm Kuavo (5_wheel): its own services from config/robots, the stand-in as one, the arm-slice check.

The stand-in runs with ~robot:=5_wheel: 4 lower-body joints before the arms, /robot_type 1, and only the
wheel-arm controller's services (/wheel_arm_change_arm_ctrl_mode, /enable_lb_arm_quick_mode as
std_srvs/SetBool, /humanoid_get_arm_ctrl_mode). Its ~services_called shows what a backend used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from groot_ros.core.layout import load_layout
from groot_ros.core.store import ObservationStore
from groot_ros.ros.backends.config import load_backend_config
from groot_ros.ros.backends.factory import make_backend
from groot_ros.testing.polling import poll_until

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
SIM_NS = "/kuavo_loopback_sim"
ARM_TARGET = np.radians([-30, 10, 5, -40, 0, -10, 0, -20, -15, -5, -50, 0, 10, 0])
WHEEL_SERVICES = {"/wheel_arm_change_arm_ctrl_mode", "/enable_lb_arm_quick_mode", "/humanoid_get_arm_ctrl_mode"}
BIPED_SERVICES = ("/arm_traj_change_mode", "/humanoid_change_arm_ctrl_mode", "/enable_wbc_arm_trajectory_control")


@pytest.fixture(scope="module")
def wheel_sim(roscore, ros_node):
    from groot_ros.sim.standin_model import load_sim_config

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    if ros_node.has_param(SIM_NS):  # an earlier stand-in's ~params stay on the master: wait for this one's own
        ros_node.delete_param(SIM_NS)
    proc = subprocess.Popen([sys.executable, str(REPO / "nodes" / "kuavo_loopback_sim"), "_robot:=5_wheel"],
                            env=env, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if not poll_until(lambda: ros_node.has_param(SIM_NS + "/arm_ctrl_mode"), 15):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"5_wheel stand-in did not come up: {proc.stderr.read().decode()[-2000:]}")
    yield proc
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=10)
    # The wheel-arm's params (robot_type 1, ...) must not leak into other tests' biped stand-in.
    for key in load_sim_config(robot="5_wheel").sdk_params:
        if ros_node.has_param("/" + key):
            ros_node.delete_param("/" + key)
    for key in ("robot", "arm_ctrl_mode", "wbc_arm_trajectory_control", "services_called"):
        if ros_node.has_param(f"{SIM_NS}/{key}"):
            ros_node.delete_param(f"{SIM_NS}/{key}")


@pytest.fixture(scope="module")
def layout():
    return load_layout("arms_claws", "5_wheel", "sim")


def test_the_stand_in_is_a_wheel_arm_robot(wheel_sim, ros_node):
    from groot_ros.ros import messages as km

    assert ros_node.get_param("/robot_type") == 1
    assert ros_node.get_param("/legRealDof") + ros_node.get_param("/waistRealDof") == 4
    msg = ros_node.wait_for_message("/sensors_data_raw", km.sensorsData, timeout=3)
    assert len(msg.joint_data.joint_q) == 20
    for service in WHEEL_SERVICES:
        ros_node.wait_for_service(service, timeout=2)
    import rosgraph

    master = rosgraph.Master("/test_five_wheel")
    for service in BIPED_SERVICES:
        with pytest.raises(rosgraph.MasterError):
            master.lookupService(service)


def test_topics_backend_uses_only_the_wheel_services(wheel_sim, ros_node, layout):
    from groot_ros.ros.subscribers import subscribe_store

    store = ObservationStore(layout)
    subs = subscribe_store(store)
    try:
        assert poll_until(lambda: store.build_observation(ros_node.get_time(), "t").ok, 10)
        backend = make_backend("topics", layout, load_backend_config(direct_to_wbc=True))
        backend.start()
        assert ros_node.get_param(SIM_NS + "/arm_ctrl_mode") == 2
        # As the node does it: the measured pose is the arm target first, then quick mode goes on.
        measured = store.build_observation(ros_node.get_time(), "t").observation.state[:14]
        backend.send({"arm": measured})
        ok, message = backend.arm_mode.set_direct_to_wbc(True)
        assert ok, message
        assert ros_node.get_param(SIM_NS + "/wbc_arm_trajectory_control") == 1  # quick mode on

        def arrived() -> bool:
            obs = store.build_observation(ros_node.get_time(), "t").observation
            return obs is not None and np.allclose(obs.state[:14], ARM_TARGET, atol=0.02)

        assert poll_until(arrived, 8, every=lambda: backend.send({"arm": ARM_TARGET, "claw": np.zeros(2)}))
        backend.shutdown()
        backend.disconnect()  # later nodes on this master refuse to start while we publish on their command topics
    finally:
        for sub in subs:
            sub.unregister()
    called = ros_node.get_param(SIM_NS + "/services_called")
    assert set(called) == WHEEL_SERVICES, called
    # On exit: quick mode off, the previous mode back, then read back.
    assert called[-3:] == ["/enable_lb_arm_quick_mode", "/wheel_arm_change_arm_ctrl_mode", "/humanoid_get_arm_ctrl_mode"]
    assert ros_node.get_param(SIM_NS + "/wbc_arm_trajectory_control") == 0


def test_sdk_backend_drives_the_wheel_stand_in(wheel_sim, ros_node, layout, tmp_path):
    """In a process of its own: the SDK keeps the robot type it found at Init for the life of the process."""
    script = tmp_path / "sdk_wheel.py"
    script.write_text(textwrap.dedent(f"""
        import numpy as np, rospy
        from groot_ros.core.layout import load_layout
        from groot_ros.ros.backends.factory import make_backend
        rospy.init_node("sdk_wheel_check")
        layout = load_layout("arms_claws", "5_wheel", "sim")
        backend = make_backend("sdk", layout)
        backend.start()
        target = np.array({ARM_TARGET.tolist()})
        for _ in range(200):
            backend.send({{"arm": target, "claw": np.zeros(2)}})
            rospy.sleep(0.01)
        from groot_ros.ros import messages as km
        q = rospy.wait_for_message("/sensors_data_raw", km.sensorsData, timeout=3).joint_data.joint_q[4:18]
        backend.shutdown()
        print("ARMS", np.abs(np.asarray(q) - target).max())
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    error = float(out.stdout.split("ARMS")[-1])
    assert error < 0.05, out.stdout
    called = set(ros_node.get_param(SIM_NS + "/services_called"))
    assert called <= WHEEL_SERVICES | {"/control_robot_leju_claw"}, called


def test_arm_slice_is_checked_against_the_robots_dof_params(wheel_sim, ros_node):
    from groot_ros.ros.startup import arm_slice_problem

    assert arm_slice_problem(load_layout("arms_claws", "5_wheel", "sim")) is None
    problem = arm_slice_problem(load_layout("arms_claws", "4_pro", "sim"))
    assert "robot:=4_pro (config/robots/4_pro.yaml) puts the arms at joints 12:26" in problem
    assert "/legRealDof (4) + /waistRealDof (0) = 4" in problem
