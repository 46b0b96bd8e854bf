"""Kuavo stand-in sim, the rospy shell (nodes/kuavo_loopback_sim): the controller's ROS interface without a
robot (see docs/kuavo_sim.md).

Private params: ~topics (sim | real | real_orbbec | a YAML path: which stream/camera/command topics to serve:
every camera of the set is published), ~robot (config/robots: 4_pro | 5_wheel, default sim.yaml's: the joint
layout, the ROS params and the controller services of that version), ~config (default config/sim.yaml),
~compressed (also publish <raw topic>/compressed, default true), ~box_offset ([lateral, forward] m where the
task's box stands on the pallet, default [0, 0]; read again for every frame: a new value starts a new task
episode, so a demonstration recorder or an evaluation can move it between episodes; ~reset_task (Trigger)
starts one with the same value), ~msg_version (the Kuavo message version it speaks, ros/kuavo_versions.py:
sdk-1.5.0 (default) | open-2025-08 | robot-2025-04: its topics, command topics and services in that version).
It reports its state in ~arm_ctrl_mode, ~wbc_arm_trajectory_control, ~head_deg and ~claw_commands_dropped
(params) for observers and tests, every service called in ~services_called (a list, in call order; the hazards it
reproduces are listed in sim/standin_model.py), and the task's phase (~task_phase, std_msgs/String: on_pallet,
grasped, placed, dropped), success (~task_success, std_msgs/Bool) and where the box is (~task_box,
std_msgs/Float64MultiArray [lateral, forward] m: on the pallet, in the claws or where it was put down; what the
demo's scripted demonstrator plans a recovery from), latched, at the camera rate.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import rospy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import SetBool, SetBoolResponse, Trigger, TriggerResponse

from groot_ros.ros import kuavo_versions as kv
from groot_ros.ros import messages as km
from groot_ros.core.images import encode_jpeg, encode_rgb8
from groot_ros.ros.messages import message_class
from groot_ros.core.layout import CommandSpec, load_layout, read_topics
from groot_ros.sim.standin_model import StandInModel, SimSnapshot, load_sim_config, mpc_state_vector, urdf_description
from groot_ros.sim.render import render
from groot_ros.sim.task import TaskState

GAIT_NODE = "humanoid_gait_switch_by_name"
BIPED_ARM_MODE_ALIAS = "/humanoid_change_arm_ctrl_mode"  # /arm_traj_change_mode forwards to it on the biped
WHEEL_ROBOT_TYPE = 1  # /robot_type of wheel-arm robots: no gait node
# The IMU of a robot standing still: gravity up, no rotation (m/s^2, rad/s).
IMU_STILL = {"imu_lin_acc": [0.0, 0.0, 9.81], "imu_ang_vel": [0.0, 0.0, 0.0]}
CLAW_SERVICE = "/control_robot_leju_claw"
GAIT_NAME_SERVICE = "/humanoid_get_current_gait_name"
MPC_OBSERVATION_TOPIC = "/humanoid_mpc_observation"  # the SDK waits for it; same content as the WBC one here
HEAD_TOPIC = "/robot_head_motion_data"
CLAW_STATE_MOVING, CLAW_STATE_REACHED = 1, 2  # lejuClawState.kMoving, kReached


def run_gait_node() -> None:
    """The node the SDK checks for; it answers the current gait ("stance") and dies with its parent."""
    rospy.init_node(GAIT_NODE)
    rospy.Service(GAIT_NAME_SERVICE, km.getCurrentGaitName,
                  lambda _req: km.getCurrentGaitNameResponse(success=True, gait_name="stance"))
    parent = os.getppid()
    while not rospy.is_shutdown() and os.getppid() == parent:
        rospy.sleep(0.5)


class LoopbackSim:
    def __init__(self) -> None:
        self.cfg = load_sim_config(rospy.get_param("~config", None), rospy.get_param("~robot", None) or None)
        topics = rospy.get_param("~topics", "sim")
        every_camera = {name: f"observation.images.{name}" for name in read_topics(topics).get("cameras") or {}}
        self.layout = load_layout("depalletize", self.cfg.robot.version, topics, cameras=every_camera)
        self.msg_version = kv.version(rospy.get_param("~msg_version", kv.DEFAULT_VERSION)).name
        self.arm_mode_srv = kv.service_class(self.msg_version, "kuavo_msgs/changeArmCtrlMode")
        self.claw_srv = kv.service_class(self.msg_version, "kuavo_msgs/controlLejuClaw")
        self.services_called: list[str] = []
        self.model = StandInModel(self.cfg)
        self._snapshot: SimSnapshot = self.model.step(0.0)
        self._set_params()

        streams = self.layout.streams
        self.pub_joints = rospy.Publisher(streams["joints"].topic, self._class("kuavo_msgs/sensorsData"), queue_size=10,
                                          tcp_nodelay=True)
        self.pub_claws = rospy.Publisher(streams["claws"].topic, self._class("kuavo_msgs/lejuClawState"), queue_size=10,
                                         tcp_nodelay=True)
        self.pub_torso = [rospy.Publisher(topic, self._class("ocs2_msgs/mpc_observation"), queue_size=10, tcp_nodelay=True)
                          for topic in dict.fromkeys([streams["torso"].topic, MPC_OBSERVATION_TOPIC])]
        self.pub_imu = {name: rospy.Publisher(streams[name].topic, Float64MultiArray, queue_size=10, tcp_nodelay=True)
                        for name in IMU_STILL if name in streams}
        self.cameras = []
        compressed_too = rospy.get_param("~compressed", True)
        for cam in self.layout.cameras:
            if cam.msg_type == "sensor_msgs/CompressedImage":
                self.cameras.append((cam.name, None, rospy.Publisher(cam.topic, CompressedImage, queue_size=2)))
            else:
                jpeg = rospy.Publisher(cam.topic + "/compressed", CompressedImage, queue_size=2) if compressed_too else None
                self.cameras.append((cam.name, rospy.Publisher(cam.topic, Image, queue_size=2), jpeg))

        handlers = {"arm": self._on_arm, "claw": self._on_claw, "torso": self._on_torso}
        self.subs = [rospy.Subscriber(spec.topic, self._class(spec.msg_type), handlers[ch], callback_args=spec,
                                      queue_size=10, tcp_nodelay=True)
                     for ch, spec in self.layout.commands.items()]
        self.subs.append(rospy.Subscriber(HEAD_TOPIC, self._class("kuavo_msgs/robotHeadMotionData"), self._on_head,
                                          queue_size=2))
        self.services = self._services()
        self.pub_phase = rospy.Publisher("~task_phase", String, queue_size=2, latch=True)
        self.pub_success = rospy.Publisher("~task_success", Bool, queue_size=2, latch=True)
        self.pub_box = rospy.Publisher("~task_box", Float64MultiArray, queue_size=2, latch=True)
        self._box_offset = self._read_box_offset()
        self.model.reset_task(self._box_offset)
        self.services.append(rospy.Service("~reset_task", Trigger, self._on_reset_task))
        biped = self.cfg.sdk_params.get("robot_type") != WHEEL_ROBOT_TYPE
        self.gait_node = subprocess.Popen([sys.executable, "-m", "groot_ros.sim.node", "--gait-node"]) if biped else None
        rospy.on_shutdown(self._stop_gait_node)
        self._noise = np.random.default_rng()
        self.camera_timer = rospy.Timer(rospy.Duration(1.0 / self.cfg.camera_rate), self._publish_cameras)

    def _class(self, type_name: str) -> type:
        """A message class in the version this stand-in speaks (Kuavo's types), else the installed one."""
        return kv.message_class(self.msg_version, type_name) if type_name in kv.TYPES else message_class(type_name)

    def _services(self) -> list[rospy.Service]:
        """The robot version's controller services (config/robots), and only those: a client calling the
        biped's services on a wheel-arm robot finds nothing, as on the real one."""
        spec = self.cfg.robot.services
        set_names = [spec.arm_mode] + ([BIPED_ARM_MODE_ALIAS] if spec.quick_mode_type != "std_srvs/SetBool" else [])
        services = [rospy.Service(name, self.arm_mode_srv, self._logged(name, self._on_set_arm_mode))
                    for name in set_names]
        services.append(rospy.Service(spec.arm_mode_get, self.arm_mode_srv,
                                      self._logged(spec.arm_mode_get, self._on_get_arm_mode)))
        if spec.quick_mode_type == "std_srvs/SetBool":
            services.append(rospy.Service(spec.quick_mode, SetBool, self._logged(spec.quick_mode, self._on_quick_mode)))
        else:
            services.append(rospy.Service(spec.quick_mode, self.arm_mode_srv,
                                          self._logged(spec.quick_mode, self._on_direct_to_wbc)))
        services.append(rospy.Service(CLAW_SERVICE, self.claw_srv, self._logged(CLAW_SERVICE, self._on_claw_service)))
        return services

    def _logged(self, name: str, handler):
        def call(req):
            self.services_called.append(name)
            rospy.set_param("~services_called", self.services_called)
            return handler(req)
        return call

    def _set_params(self) -> None:
        for key, value in self.cfg.sdk_params.items():
            rospy.set_param("/" + key, value)
        rospy.set_param("/humanoid_description", urdf_description(self.cfg.robot))
        self._publish_modes()

    def _publish_modes(self) -> None:
        self._published_mode = self.model.arm_mode
        rospy.set_param("~arm_ctrl_mode", self.model.arm_mode)
        rospy.set_param("~wbc_arm_trajectory_control", int(self.model.direct_to_wbc))

    def _stop_gait_node(self) -> None:
        if self.gait_node is None:
            return
        self.gait_node.terminate()
        try:
            self.gait_node.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.gait_node.kill()

    # --- commands -------------------------------------------------------------------------------------
    def _on_arm(self, msg, spec: CommandSpec) -> None:
        values = spec.values_from_message(msg)
        reason = self.model.command_arm(msg.name, values)
        if reason:
            rospy.logwarn_throttle(1.0, f"{spec.topic}: {reason}")

    def _on_claw(self, msg, spec: CommandSpec) -> None:
        reason = self.model.command_claw(spec.values_from_message(msg))
        if reason:
            rospy.logwarn_throttle(1.0, f"{spec.topic}: {reason}")
            rospy.set_param("~claw_commands_dropped", self.model.claw_commands_dropped)

    def _on_head(self, msg) -> None:
        values = list(msg.joint_data)
        reason = self.model.command_head(*values[:2]) if len(values) == 2 else f"rejected: {len(values)} values, need [yaw, pitch]"
        if reason:
            rospy.logwarn_throttle(1.0, f"{HEAD_TOPIC}: {reason}")
        else:
            rospy.set_param("~head_deg", list(self.model.head_deg))

    def _on_torso(self, msg, spec: CommandSpec) -> None:
        reason = self.model.command_torso(*spec.values_from_message(msg))
        if reason:
            rospy.logwarn_throttle(1.0, f"{spec.topic}: {reason}")

    def _on_set_arm_mode(self, req):
        ok, message = self.model.set_arm_mode(req.control_mode)
        rospy.loginfo(f"arm control: {message}" if ok else f"arm control mode change refused: {message}")
        self._publish_modes()
        return self.arm_mode_srv._response_class(result=ok, mode=self.model.arm_mode, message=message)

    def _on_get_arm_mode(self, _req):
        return self.arm_mode_srv._response_class(result=True, mode=self.model.arm_mode, message="")

    def _on_direct_to_wbc(self, req):
        enabled = req.control_mode == 1
        self.model.set_direct_to_wbc(enabled)
        self._publish_modes()
        rospy.loginfo(f"direct-to-WBC arm trajectory control {'on' if enabled else 'off'}")
        return self.arm_mode_srv._response_class(result=True, mode=int(enabled), message="")

    def _on_quick_mode(self, req):
        self.model.set_direct_to_wbc(bool(req.data))
        self._publish_modes()
        rospy.loginfo(f"quick arm mode {'on' if req.data else 'off'}")
        return SetBoolResponse(success=True, message="")

    def _on_claw_service(self, req):
        reason = self.model.command_claw(list(req.data.position))
        if reason:
            rospy.set_param("~claw_commands_dropped", self.model.claw_commands_dropped)
        return self.claw_srv._response_class(success=reason is None, message=reason or "")

    def _read_box_offset(self) -> tuple[float, float]:
        return tuple(float(v) for v in rospy.get_param_cached("~box_offset", (0.0, 0.0)))  # pushed on change

    def _on_reset_task(self, _req):
        self._box_offset = self._read_box_offset()
        state = self.model.reset_task(self._box_offset)
        self._publish_task(state)  # latched: nobody reads the previous episode's outcome after the reset
        return TriggerResponse(True, f"box on the pallet at {list(state.box)} m, phase {state.phase}")

    def _publish_task(self, task: TaskState) -> None:
        self.pub_phase.publish(String(task.phase))
        self.pub_success.publish(Bool(task.success))
        self.pub_box.publish(Float64MultiArray(data=list(task.box)))

    # --- publishing -----------------------------------------------------------------------------------
    def run(self) -> None:
        rate = rospy.Rate(self.cfg.rate)
        last = rospy.get_time()
        while not rospy.is_shutdown():
            now = rospy.get_time()
            self._snapshot = snap = self.model.step(max(now - last, 0.0))
            last = now
            if snap.arm_mode != self._published_mode:  # a delayed switch took effect
                self._publish_modes()
            self._publish_state(snap, rospy.Time.now())
            try:
                rate.sleep()
            except rospy.ROSInterruptException:
                break

    def _publish_state(self, snap: SimSnapshot, stamp: rospy.Time) -> None:
        joints = self.pub_joints.data_class()
        joints.header.stamp = joints.sensor_time = stamp
        for field in joints.joint_data.__slots__:  # joint_vd and joint_torque (2025-04: joint_current) all zero
            setattr(joints.joint_data, field, [0.0] * len(snap.q))
        joints.joint_data.joint_q = snap.q.tolist()
        joints.joint_data.joint_v = snap.dq.tolist()
        joints.imu_data.quat.w = 1.0
        self.pub_joints.publish(joints)

        claws = self.pub_claws.data_class()
        claws.header.stamp = stamp
        claws.state = [CLAW_STATE_MOVING if moving else CLAW_STATE_REACHED for moving in snap.claw_moving]
        claws.data.name = ["left_claw", "right_claw"]
        claws.data.position = snap.claw.tolist()
        claws.data.velocity = [0.0, 0.0]
        claws.data.effort = [0.0, 0.0]
        self.pub_claws.publish(claws)

        obs = self.pub_torso[0].data_class()
        obs.time = snap.time
        obs.state.value = mpc_state_vector(snap).tolist()
        obs.input.value = [0.0] * len(snap.q)
        for pub in self.pub_torso:
            pub.publish(obs)
        for name, pub in self.pub_imu.items():
            pub.publish(Float64MultiArray(data=IMU_STILL[name]))

    def _publish_cameras(self, _event) -> None:
        box = self._read_box_offset()
        if box != self._box_offset:  # a new episode's box
            self._box_offset = box
            self.model.reset_task(box)
            self._snapshot = self.model.step(0.0)
        snap = self._snapshot
        stamp = rospy.Time.now()
        task = snap.task
        self._publish_task(task)
        for name, raw_pub, jpeg_pub in self.cameras:
            img = render(name, snap.arm, snap.claw, snap.torso, self.cfg.image_size, task.box, task.held,
                         self.cfg.task.target_lateral)
            # sensor noise in the top row, as a real camera has: a standing robot never sends identical frames,
            # so the node's frozen-camera check (watchdog frozen_camera_s) judges the stand-in as it would a robot
            img[0] = self._noise.integers(0, 256, img[0].shape, dtype=np.uint8)
            if raw_pub is not None and raw_pub.get_num_connections():
                msg = Image(**encode_rgb8(img))
                msg.header.stamp, msg.header.frame_id = stamp, name
                raw_pub.publish(msg)
            if jpeg_pub is not None and jpeg_pub.get_num_connections():
                msg = CompressedImage(format="jpeg", data=encode_jpeg(img))
                msg.header.stamp, msg.header.frame_id = stamp, name
                jpeg_pub.publish(msg)


def main() -> None:
    if "--gait-node" in sys.argv:
        run_gait_node()
        return
    rospy.init_node("kuavo_loopback_sim")
    sim = LoopbackSim()
    rospy.loginfo(f"kuavo_loopback_sim: {sim.cfg.robot.version}, {len(sim.model.config.robot.arm_joint_names)} arm "
                  f"joints of {sim.cfg.robot.num_joints}, topics '{sim.layout.topics_name}', arm mode {sim.model.arm_mode}, "
                  f"Kuavo messages {sim.msg_version}")
    sim.run()


if __name__ == "__main__":
    main()
