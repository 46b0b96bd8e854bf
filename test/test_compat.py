"""Message versions: a topic in another version is read from its own definition, one lacking a field we read stops
start-up, and a service in a version groot_ros does not ship stops it naming both md5sums (test_msg_versions.py:
the known versions)."""

from __future__ import annotations

import json
import time

import pytest

from groot_ros.core.layout import load_layout
from groot_ros.ros.compat import MessageVersionError, check_message_versions, kuavo_interfaces

pytestmark = pytest.mark.ros

OLD_MD5 = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def old_claw_state(ros_node):
    """/leju_claw_state published with another version of lejuClawState (same type name, other md5sum)."""
    from groot_ros.ros import messages as km

    class OldClawState(km.lejuClawState):
        _md5sum = OLD_MD5

    pub = ros_node.Publisher("/leju_claw_state", OldClawState, queue_size=1)
    time.sleep(0.3)
    yield pub
    pub.unregister()


def test_interfaces_follow_the_layout_and_the_robot():
    wheel = kuavo_interfaces(load_layout("arms_claws", "5_wheel", "sim"), commanding=True)
    assert {(i.kind, i.name, i.type_name) for i in wheel} == {
        ("topic", "/sensors_data_raw", "kuavo_msgs/sensorsData"),
        ("topic", "/leju_claw_state", "kuavo_msgs/lejuClawState"),
        ("service", "/wheel_arm_change_arm_ctrl_mode", "kuavo_msgs/changeArmCtrlMode"),
        ("service", "/humanoid_get_arm_ctrl_mode", "kuavo_msgs/changeArmCtrlMode"),
        ("service", "/enable_lb_arm_quick_mode", "std_srvs/SetBool")}
    dry = kuavo_interfaces(load_layout("depalletize", "4_pro", "sim"), commanding=False)
    assert [i.name for i in dry] == ["/sensors_data_raw", "/leju_claw_state", "/humanoid_wbc_observation"]


def test_a_topic_in_an_unknown_version_is_read_from_its_own_definition(old_claw_state):
    layout = load_layout("arms_claws", "4_pro", "sim")
    notes = check_message_versions(layout, commanding=False, wait_s=2.0)
    assert (f"topic /leju_claw_state: kuavo_msgs/lejuClawState md5sum {OLD_MD5} (unknown version, decoded from its "
            "own definition)") in notes


def test_a_service_with_another_md5_is_named(ros_node):
    from groot_ros.ros import messages as km

    class OldChangeArmCtrlMode(km.changeArmCtrlMode):
        _md5sum = OLD_MD5

    service = ros_node.Service("/arm_traj_change_mode", OldChangeArmCtrlMode,
                               lambda req: km.changeArmCtrlModeResponse(result=True))
    try:
        with pytest.raises(MessageVersionError, match=r"service /arm_traj_change_mode: .* md5sum " + OLD_MD5):
            check_message_versions(load_layout("arms_claws", "4_pro", "sim"), commanding=True, wait_s=1.0)
    finally:
        service.shutdown()


def test_matching_versions_pass_and_missing_ones_are_listed(ros_node):
    from groot_ros.ros import messages as km

    pub = ros_node.Publisher("/sensors_data_raw", km.sensorsData, queue_size=1)
    try:
        unchecked = check_message_versions(load_layout("arms_claws", "4_pro", "sim"), commanding=False, wait_s=1.0)
    finally:
        pub.unregister()
    assert unchecked == [f"topic /sensors_data_raw: kuavo_msgs/sensorsData md5sum {km.sensorsData._md5sum} (sdk-1.5.0)",
                         "not checked (nobody offers it yet): topic /leju_claw_state (kuavo_msgs/lejuClawState)"]


def test_a_missing_field_stops_start_up(ros_node, tmp_path):
    from groot_ros.ros import kuavo_versions as kv
    from groot_ros.ros.params import NodeParams
    from groot_ros.ros.startup import StartupError, resolve_startup

    text = kv.message_definition("open-2025-08", "kuavo_msgs/lejuClawState")[0]
    no_position = kv.class_from_definition("kuavo_msgs/lejuClawState", text.replace("float64[] position\n", ""))
    pub = ros_node.Publisher("/leju_claw_state", no_position, queue_size=1)
    ckpt = tmp_path / "pretrained_model"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({
        "type": "groot", "output_features": {"action": {"type": "ACTION", "shape": [16]}},
        "input_features": {"observation.state": {"type": "STATE", "shape": [16]},
                           "observation.images.cam_head": {"type": "VISUAL", "shape": [3, 96, 128]}}}))
    params = NodeParams(checkpoint=ckpt, robot="4_pro", topics="sim", dry_run=True)
    try:
        with pytest.raises(StartupError, match=f"topic /leju_claw_state: the robot's kuavo_msgs/lejuClawState \\(md5sum "
                                               f"{no_position._md5sum}\\) has no field data.position"):
            resolve_startup(params, version_wait_s=1.0)
    finally:
        pub.unregister()
