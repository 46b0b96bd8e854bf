"""The arm-mode handshake: external control while we command, the robot's own mode back afterwards.

The reference deployment switched to external control and direct-to-WBC on start and never switched
back, leaving the arms frozen in external mode (and bypassing MPC smoothing) for whoever came next.
The services are the robot version's (config/robots/*.yaml): the biped's /arm_traj_change_mode and
direct-to-WBC, the wheel-arm's /wheel_arm_change_arm_ctrl_mode and quick mode (std_srvs/SetBool).
"""

from __future__ import annotations

import rospy

from std_srvs.srv import SetBool

from groot_ros.core.layout import RobotServices
from groot_ros.ros.backends.config import ArmModeConfig, BackendError
from groot_ros.ros.messages import changeArmCtrlMode


class ArmModeSwitch:
    def __init__(self, config: ArmModeConfig, services: RobotServices | None):
        if services is None:
            raise BackendError("the robot config has no `services` (config/robots/*.yaml): cannot switch arm modes")
        self.config = config
        self.services = services
        self.previous_mode: int | None = None
        self._engaged = False
        self._direct_to_wbc = False

    def engage(self) -> None:
        cfg = self.config
        self.previous_mode = self._read_mode()
        ok, message = self._call(self.services.arm_mode, cfg.external)
        if not ok:
            raise BackendError(f"cannot switch the arms to external control ({cfg.external}) via {self.services.arm_mode}: {message}")
        self._engaged = True
        if cfg.direct_to_wbc:
            ok, message = self._quick_mode(True)
            if not ok:
                self.restore()
                raise BackendError(f"cannot enable direct-to-WBC arm control via {self.services.quick_mode}: {message}")
            self._direct_to_wbc = True
        rospy.loginfo(f"arm control mode {self.previous_mode} -> {cfg.external} (external)"
                      + (", direct-to-WBC on" if self._direct_to_wbc else ""))

    def restore(self) -> None:
        """Idempotent; logs rather than raises, so every step runs even when one fails."""
        cfg = self.config
        if self._direct_to_wbc:
            ok, message = self._quick_mode(False)
            if ok:
                self._direct_to_wbc = False
            else:
                rospy.logerr(f"direct-to-WBC arm control may still be ON: {self.services.quick_mode}: {message}")
        if not self._engaged:
            return
        mode = self.previous_mode if self.previous_mode is not None else cfg.restore_if_unknown
        ok, message = self._call(self.services.arm_mode, mode)
        if ok:
            self._engaged = False
            rospy.loginfo(f"arm control mode restored to {mode}"
                          + ("" if self.previous_mode is not None else " (previous mode unknown)"))
        else:
            rospy.logerr(f"arms may still be in external control: restoring mode {mode} via {self.services.arm_mode} failed: {message}")

    def _read_mode(self) -> int | None:
        try:
            rospy.wait_for_service(self.services.arm_mode_get, timeout=self.config.service_timeout)
            return int(rospy.ServiceProxy(self.services.arm_mode_get, changeArmCtrlMode)().mode)
        except (rospy.ROSException, rospy.ServiceException) as exc:
            rospy.logwarn(f"cannot read the arm control mode from {self.services.arm_mode_get} ({exc}); "
                          f"will restore mode {self.config.restore_if_unknown} on shutdown")
            return None

    def _quick_mode(self, on: bool) -> tuple[bool, str]:
        """Direct-to-WBC (biped, changeArmCtrlMode 1/0) or quick arm mode (wheel-arm, std_srvs/SetBool)."""
        service = self.services.quick_mode
        if self.services.quick_mode_type != "std_srvs/SetBool":
            return self._call(service, int(on))
        try:
            rospy.wait_for_service(service, timeout=self.config.service_timeout)
            resp = rospy.ServiceProxy(service, SetBool)(data=on)
            return bool(resp.success), resp.message
        except (rospy.ROSException, rospy.ServiceException) as exc:
            return False, str(exc)

    def _call(self, service: str, mode: int) -> tuple[bool, str]:
        try:
            rospy.wait_for_service(service, timeout=self.config.service_timeout)
            resp = rospy.ServiceProxy(service, changeArmCtrlMode)(control_mode=mode)
            return bool(resp.result), resp.message
        except (rospy.ROSException, rospy.ServiceException) as exc:
            return False, str(exc)
