"""Message versions: a robot whose Kuavo messages have another md5sum stops start-up, naming both versions."""

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


def test_a_topic_with_another_md5_is_named_with_both_versions(old_claw_state):
    from groot_ros.ros import messages as km

    layout = load_layout("arms_claws", "4_pro", "sim")
    with pytest.raises(MessageVersionError) as err:
        check_message_versions(layout, commanding=False, wait_s=2.0)
    text = str(err.value)
    assert "topic /leju_claw_state" in text and "kuavo_msgs/lejuClawState" in text
    assert OLD_MD5 in text and km.lejuClawState._md5sum in text


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
    assert unchecked == ["not checked (nobody offers it yet): topic /leju_claw_state (kuavo_msgs/lejuClawState)"]


def test_an_md5_mismatch_stops_start_up(old_claw_state, tmp_path):
    from groot_ros.ros.params import NodeParams
    from groot_ros.ros.startup import StartupError, resolve_startup

    ckpt = tmp_path / "pretrained_model"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({
        "type": "groot", "output_features": {"action": {"type": "ACTION", "shape": [16]}},
        "input_features": {"observation.state": {"type": "STATE", "shape": [16]},
                           "observation.images.cam_head": {"type": "VISUAL", "shape": [3, 96, 128]}}}))
    params = NodeParams(checkpoint=ckpt, robot="4_pro", topics="sim", dry_run=True)
    with pytest.raises(StartupError, match=f"topic /leju_claw_state: the robot's kuavo_msgs/lejuClawState has md5sum {OLD_MD5}"):
        resolve_startup(params, version_wait_s=1.0)
