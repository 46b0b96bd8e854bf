"""Kuavo message versions: the shipped definitions have the md5sums the robots declare, topics decode in the
publisher's version (a missing field named at start-up), services are called in the version they declare, bags of
any version convert, and the node runs start-up, closed loop and exit against the stand-in in each version."""

from __future__ import annotations

import sys
import threading
from io import BytesIO

import numpy as np
import pytest

from groot_ros.ros import kuavo_versions as kv

ROBOT_2025_04_SENSORS = "54439d3ac2ef33d46fd7cf6d324860c3"  # Leju's recorded 2025-04 session (shared/reference)
OPEN_2025_08 = {"kuavo_msgs/sensorsData": "35fff741b8e115992c1ac46e99c1084f",
                "kuavo_msgs/lejuClawState": "71c0eb8f4803a00f5667de51a2f70aac",
                "kuavo_msgs/changeArmCtrlMode": "8a8d154c05ee16e8f5d2b72d9bb51026"}
UNKNOWN_MD5 = "0123456789abcdef0123456789abcdef"


def _without_joint_q():
    """sensorsData of a made-up version whose jointData has no joint_q."""
    text = kv.message_definition("open-2025-08", "kuavo_msgs/sensorsData")[0]
    return kv.class_from_definition("kuavo_msgs/sensorsData", text.replace("float64[] joint_q\n", "float64[] q\n"))


@pytest.fixture
def fresh_choice(monkeypatch):
    """The service versions a check picks (messages.use) last only for the test."""
    from groot_ros.ros import messages

    monkeypatch.setattr(messages, "_CHOSEN", {})
    return messages


def test_shipped_definitions_have_the_robots_md5sums(fresh_choice):
    sdk = fresh_choice  # nothing chosen: the kuavo-humanoid-sdk 1.5.0 wheel's generated classes
    for type_name in kv.TYPES:
        assert kv.md5sum("sdk-1.5.0", type_name) == sdk.message_class(type_name)._md5sum, type_name
    for type_name in kv.SERVICES:
        assert kv.md5sum("sdk-1.5.0", type_name) == getattr(sdk, type_name.partition("/")[2])._md5sum, type_name
    for part in ("_request_class", "_response_class"):
        assert (getattr(kv.service_class("sdk-1.5.0", "kuavo_msgs/changeArmCtrlMode"), part)._md5sum
                == getattr(sdk.changeArmCtrlMode, part)._md5sum)
    assert kv.md5sum("robot-2025-04", "kuavo_msgs/sensorsData") == ROBOT_2025_04_SENSORS
    for type_name, md5 in OPEN_2025_08.items():
        assert kv.md5sum("open-2025-08", type_name) == md5
    assert len(kv.known_md5s("kuavo_msgs/sensorsData")) == 3  # each version its own


def test_the_decoder_reads_each_version_and_builds_its_class_once():
    from groot_ros.ros.subscribers import VersionedDecoder, VersionedMsg

    decode = VersionedDecoder("/sensors_data_raw", ["joint_data.joint_q"])
    for version in kv.VERSIONS:
        cls = kv.message_class(version, "kuavo_msgs/sensorsData")
        msg = cls()
        msg.joint_data.joint_q = [0.5, -0.25]
        out = BytesIO()
        msg.serialize(out)
        for _ in range(2):
            raw = VersionedMsg().deserialize(out.getvalue())
            raw._connection_header = {"type": cls._type, "md5sum": cls._md5sum, "message_definition": cls._full_text}
            assert list(decode(raw).joint_data.joint_q) == [0.5, -0.25]
            assert list(raw.joint_data.joint_q) == [0.5, -0.25]  # what a typed subscriber's callback reads
    assert len(decode._seen) == 3
    typed = kv.message_class("sdk-1.5.0", "kuavo_msgs/sensorsData")()
    assert decode(typed) is typed  # a typed subscriber of the topic came first in this process
    raw = VersionedMsg().deserialize(out.getvalue())
    raw._connection_header = {"type": "kuavo_msgs/sensorsData", "md5sum": UNKNOWN_MD5}  # no definition, unknown
    assert decode(raw) is None and UNKNOWN_MD5 in decode._undecodable  # dropped: the store reports it missing


def test_a_definition_without_a_field_we_read_is_named():
    cls = _without_joint_q()
    header = {"type": cls._type, "md5sum": cls._md5sum, "message_definition": cls._full_text}
    _cls, problem = kv.connection_class("/sensors_data_raw", header, ["joint_data.joint_q"])
    assert problem == (f"topic /sensors_data_raw: the robot's kuavo_msgs/sensorsData (md5sum {cls._md5sum}) has no "
                       f"field joint_data.joint_q, which groot_ros reads")
    no_definition = {"type": cls._type, "md5sum": ROBOT_2025_04_SENSORS}  # a known version's shipped one stands in
    assert kv.connection_class("/sensors_data_raw", no_definition, ["joint_data.joint_q"])[1] == ""


def test_bags_of_the_2025_04_robot_convert_and_give_a_start_pose(tmp_path, depalletize_layout):
    import rosbag

    from groot_ros.ros.start_pose import load_start_pose
    from groot_ros.testing.bags import EpisodeSpec, arm_command, write_episode
    from groot_ros.tools.bag2lerobot import ConvertOptions, convert

    bag = write_episode(tmp_path / "bags" / "episode_00.bag", depalletize_layout,
                        EpisodeSpec(seconds=1.5, msg_version="robot-2025-04"))
    with rosbag.Bag(str(bag)) as b:
        assert {c.md5sum for c in b._connections.values() if c.topic == "/sensors_data_raw"} == {ROBOT_2025_04_SENSORS}
    report = convert([bag], tmp_path / "dataset", depalletize_layout, ConvertOptions(task="t", fps=10),
                     progress=False)
    assert [o.bag.name for o in report.written] == [bag.name], report.summary()
    pose = load_start_pose(str(bag), depalletize_layout)
    np.testing.assert_allclose(pose[:14], arm_command(depalletize_layout, 0.0, 0.0), atol=1e-9)


def test_the_hot_path_benchmark_prints_both_paths_from_one_run():
    from groot_ros.bench.messages import format_message_bench, run_message_bench

    result = run_message_bench(count=50, rounds=1)  # numbers only: the machine decides them
    assert result["md5sum"] == ROBOT_2025_04_SENSORS and set(result["us_per_message"]) == {"store_update", "typed",
                                                                                            "versioned"}
    text = format_message_bench(result)
    assert "before: typed subscriber" in text and "now: AnyMsg" in text and "ratio now/before" in text


@pytest.mark.ros
def test_start_up_names_a_missing_field_and_picks_the_services_version(ros_node, fresh_choice):
    from groot_ros.core.layout import load_layout
    from groot_ros.ros.compat import MessageVersionError, check_message_versions

    layout = load_layout("arms_claws", "4_pro", "sim")
    bad = _without_joint_q()
    pub = ros_node.Publisher("/sensors_data_raw", bad, queue_size=1)
    try:
        with pytest.raises(MessageVersionError, match=f"topic /sensors_data_raw: .*md5sum {bad._md5sum}.* no field "
                                                      "joint_data.joint_q"):
            check_message_versions(layout, commanding=False, wait_s=2.0)
    finally:
        pub.unregister()

    open_srv = kv.service_class("open-2025-08", "kuavo_msgs/changeArmCtrlMode")
    service = ros_node.Service("/arm_traj_change_mode", open_srv, lambda req: open_srv._response_class(result=True))
    try:
        notes = check_message_versions(layout, commanding=True, wait_s=0.5)
        assert fresh_choice.changeArmCtrlMode is open_srv  # every caller now calls it in the robot's version
        assert fresh_choice.changeArmCtrlModeResponse is open_srv._response_class
        assert (f"service /arm_traj_change_mode: kuavo_msgs/changeArmCtrlMode md5sum {OPEN_2025_08[open_srv._type]} "
                "(open-2025-08 = robot-2025-04)") in notes
    finally:
        service.shutdown()


@pytest.mark.ros
def test_an_unknown_service_version_names_both_md5sums(ros_node, fresh_choice):
    from groot_ros.core.layout import load_layout
    from groot_ros.ros.compat import MessageVersionError, check_message_versions

    class Unknown(kv.service_class("open-2025-08", "kuavo_msgs/changeArmCtrlMode")):
        _md5sum = UNKNOWN_MD5

    service = ros_node.Service("/arm_traj_change_mode", Unknown, lambda req: Unknown._response_class(result=True))
    try:
        with pytest.raises(MessageVersionError) as err:
            check_message_versions(load_layout("arms_claws", "4_pro", "sim"), commanding=True, wait_s=0.5)
    finally:
        service.shutdown()
    text = str(err.value)
    assert f"service /arm_traj_change_mode: the robot's kuavo_msgs/changeArmCtrlMode has md5sum {UNKNOWN_MD5}" in text
    assert all(md5 in text for md5 in kv.known_md5s("kuavo_msgs/changeArmCtrlMode"))


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("version, dry_run", [("sdk-1.5.0", False), ("open-2025-08", False),
                                              ("robot-2025-04", False), ("robot-2025-04", True)])
def test_the_node_runs_against_the_stand_in_in_each_version(node_on_standin, tiny_checkpoint, version, dry_run):
    """Start-up (arm mode read back), chunks in closed loop, then ~stop's restore and a clean exit."""
    rospy, node = node_on_standin.rospy, node_on_standin
    node.start("sim_depalletize.launch", "seed:=0", f"dry_run:={str(dry_run).lower()}", f"msg_version:={version}",
               sim=None, checkpoint=tiny_checkpoint.pretrained_model)
    node.wait_for(lambda s: s.state == "running" and s.chunks >= 2, 120, f"chunks against the stand-in in {version}")
    log = (node.folder / "launch.log").read_text()
    assert f"/sensors_data_raw: kuavo_msgs/sensorsData md5sum {kv.md5sum(version, 'kuavo_msgs/sensorsData')}" in log
    if dry_run:
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 1, "a dry run switched the arm mode"
    else:
        assert rospy.get_param("/kuavo_loopback_sim/arm_ctrl_mode") == 2
        with node.rec.lock:
            assert node.rec.arm, "no arm command reached the stand-in"
        stopped = node.call("stop")
        assert stopped.success and "arm mode restored to 1 (read back)" in stopped.message, stopped.message
    assert node.stop_node() == 0, (node.folder / "launch.log").read_text()[-3000:]


def test_classes_built_at_once_from_several_threads_all_decode():
    """A bag's topics start together: each subscriber thread builds its publisher's class at the same moment.
    genpy's generator keeps state in module globals; unserialized, some classes lacked their struct helpers."""
    texts = [kv.message_definition(version, type_name)[0] + f"\n# copy {i}"  # distinct texts: no cache hit
             for i in range(4) for version in kv.VERSIONS for type_name in kv.TYPES]
    names = [type_name for _ in range(4) for _version in kv.VERSIONS for type_name in kv.TYPES]
    start, errors = threading.Barrier(len(texts)), []

    def build(type_name: str, text: str) -> None:
        start.wait()
        try:
            msg = kv.class_from_definition(type_name, text)()
            out = BytesIO()
            msg.serialize(out)
            type(msg)().deserialize(out.getvalue())
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(f"{type_name}: {exc!r}")

    threads = [threading.Thread(target=build, args=pair) for pair in zip(names, texts)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave inside the generator, as on a loaded machine
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
