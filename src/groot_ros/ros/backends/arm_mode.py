"""The arm-mode handshake: external control while we command, the robot's own mode back afterwards.

The reference deployment switched to external control and direct-to-WBC on start and never switched
back, leaving the arms frozen in external mode (and bypassing MPC smoothing) for whoever came next.
"""

from __future__ import annotations

import rospy

from groot_ros.ros.backends.config import ArmModeConfig, BackendError
from groot_ros.ros.messages import changeArmCtrlMode


class ArmModeSwitch:
    def __init__(self, config: ArmModeConfig):
        self.config = config
        self.previous_mode: int | None = None
        self._engaged = False
        self._direct_to_wbc = False

    def engage(self) -> None:
        cfg = self.config
        self.previous_mode = self._read_mode()
        ok, message = self._call(cfg.set_service, cfg.external)
        if not ok:
            raise BackendError(f"cannot switch the arms to external control ({cfg.external}) via {cfg.set_service}: {message}")
        self._engaged = True
        if cfg.direct_to_wbc:
            ok, message = self._call(cfg.direct_to_wbc_service, 1)
            if not ok:
                self.restore()
                raise BackendError(f"cannot enable direct-to-WBC arm control via {cfg.direct_to_wbc_service}: {message}")
            self._direct_to_wbc = True
        rospy.loginfo(f"arm control mode {self.previous_mode} -> {cfg.external} (external)"
                      + (", direct-to-WBC on" if self._direct_to_wbc else ""))

    def restore(self) -> None:
        """Idempotent; logs rather than raises, so every step runs even when one fails."""
        cfg = self.config
        if self._direct_to_wbc:
            ok, message = self._call(cfg.direct_to_wbc_service, 0)
            if ok:
                self._direct_to_wbc = False
            else:
                rospy.logerr(f"direct-to-WBC arm control may still be ON: {cfg.direct_to_wbc_service}: {message}")
        if not self._engaged:
            return
        mode = self.previous_mode if self.previous_mode is not None else cfg.restore_if_unknown
        ok, message = self._call(cfg.set_service, mode)
        if ok:
            self._engaged = False
            rospy.loginfo(f"arm control mode restored to {mode}"
                          + ("" if self.previous_mode is not None else " (previous mode unknown)"))
        else:
            rospy.logerr(f"arms may still be in external control: restoring mode {mode} via {cfg.set_service} failed: {message}")

    def _read_mode(self) -> int | None:
        try:
            rospy.wait_for_service(self.config.get_service, timeout=self.config.service_timeout)
            return int(rospy.ServiceProxy(self.config.get_service, changeArmCtrlMode)().mode)
        except (rospy.ROSException, rospy.ServiceException) as exc:
            rospy.logwarn(f"cannot read the arm control mode from {self.config.get_service} ({exc}); "
                          f"will restore mode {self.config.restore_if_unknown} on shutdown")
            return None

    def _call(self, service: str, mode: int) -> tuple[bool, str]:
        try:
            rospy.wait_for_service(service, timeout=self.config.service_timeout)
            resp = rospy.ServiceProxy(service, changeArmCtrlMode)(control_mode=mode)
            return bool(resp.result), resp.message
        except (rospy.ROSException, rospy.ServiceException) as exc:
            return False, str(exc)
