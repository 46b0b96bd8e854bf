#!/usr/bin/env bash
# Idempotent set-up: ROS 1 (Debian packages when no ROS is found), the catkin workspace built with the
# system Python, and a venv on that interpreter (system site packages, so rospy is visible) holding the
# locked ML stack. Every step is skipped when its inputs have not changed, so a re-run takes seconds.
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/env.sh"
say() { printf '[setup] %s\n' "$*"; }
t0=$SECONDS

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  say "need root to run: $*"; exit 1; fi; }

DEBIAN_ROS_PACKAGES="ros-core-python-dev python3-rostest python3-rosbag python3-roslaunch catkin
  python3-sensor-msgs python3-geometry-msgs python3-std-srvs python3-diagnostic-msgs
  python3-diagnostic-updater python3-tf python3-cv-bridge rosbash ros-message-generation ros-message-runtime python3-genpy python3-genmsg
  ros-std-msgs libstd-msgs-dev python3-rostopic python3-rosservice python3-rosnode python3-rosmsg"
# pyaudio (pulled by kuavo-humanoid-sdk) compiles against portaudio; the venv needs ensurepip.
BUILD_PACKAGES="portaudio19-dev python3-venv python3-dev build-essential"

apt_missing() { local p out=""; for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || out="$out $p"; done; echo $out; }

install_system_packages() {
  local want="$BUILD_PACKAGES"
  local distro
  distro=$(ls -d /opt/ros/*/ 2>/dev/null | head -1 | xargs -r basename) || true
  if [ -z "$distro" ]; then
    want="$want $DEBIAN_ROS_PACKAGES"
  else
    # An Ubuntu robot PC with /opt/ros: kuavo-humanoid-sdk imports cv_bridge and diagnostic_updater.
    want="$want ros-$distro-cv-bridge ros-$distro-diagnostic-updater"
  fi
  if ! command -v dpkg >/dev/null; then say "not a Debian/Ubuntu system: install ROS 1 and portaudio yourself"; return; fi
  local missing; missing=$(apt_missing $want)
  if [ -n "$missing" ]; then
    say "installing system packages:$missing"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  else
    say "system packages present"
  fi
}

check_python() {
  "$GROOT_PYTHON" - <<'PY' || { say "$GROOT_PYTHON must be Python >= 3.10 (LeRobot 0.4.x); set GROOT_PYTHON"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
}

build_workspace() {
  local key; key=$(cat "$GROOT_ROOT"/package.xml "$GROOT_ROOT"/CMakeLists.txt "$GROOT_ROOT"/setup.py \
    "$GROOT_ROOT"/msg/*.msg | sha256sum | cut -c1-16)
  if [ -f "$GROOT_WS/devel/setup.bash" ] && [ "$(cat "$GROOT_WS/.stamp" 2>/dev/null)" = "$key" ]; then
    say "catkin workspace up to date ($GROOT_WS)"; return
  fi
  say "building catkin workspace $GROOT_WS"
  rm -rf "$GROOT_WS/build" "$GROOT_WS/devel"  # from scratch: stale relay scripts must not survive
  mkdir -p "$GROOT_WS/src"
  ln -sfn "$GROOT_ROOT" "$GROOT_WS/src/groot_ros"
  ( groot_source_ros; cd "$GROOT_WS" && catkin_make -DPYTHON_EXECUTABLE="$GROOT_PYTHON" \
      -DCATKIN_ENABLE_TESTING=ON >"$GROOT_WS/build.log" 2>&1 ) \
    || { tail -40 "$GROOT_WS/build.log"; say "catkin_make failed (log: $GROOT_WS/build.log)"; exit 1; }
  echo "$key" > "$GROOT_WS/.stamp"
}

build_venv() {
  if [ -f "$GROOT_VENV/.installed" ]; then say "venv up to date ($GROOT_VENV)"; return; fi
  say "creating venv $GROOT_VENV (a few minutes the first time: torch is large)"
  rm -rf "$GROOT_VENV"
  "$GROOT_PYTHON" -m venv --system-site-packages "$GROOT_VENV"
  "$GROOT_VENV/bin/python" -m pip install -q --upgrade "$(grep -E '^pip==' "$GROOT_ROOT/requirements.lock")"
  # The lock holds every package with its exact version: no resolver, same set everywhere.
  "$GROOT_VENV/bin/python" -m pip install -q --no-deps -r "$GROOT_ROOT/requirements.lock"
  touch "$GROOT_VENV/.installed"
}

check_imports() {
  # Re-checked whenever the venv, the workspace or the system's package set changes (apt-get remove included).
  local key; key=$({ echo "$GROOT_VENV"; cat "$GROOT_WS/.stamp" "$GROOT_ROOT/scripts/check_env.py";
    stat -c %Y /var/lib/dpkg/status 2>/dev/null; } | sha256sum | cut -c1-16)
  if [ "$(cat "$GROOT_VENV/.imports_ok" 2>/dev/null)" = "$key" ]; then say "import check up to date"; return; fi
  "$GROOT_ROOT/scripts/in-env" python "$GROOT_ROOT/scripts/check_env.py" \
    || { say "set-up incomplete: install what is named above (or fix it), then run make setup again"; exit 1; }
  echo "$key" > "$GROOT_VENV/.imports_ok"
}

install_system_packages
check_python
build_workspace
build_venv
check_imports
say "done in $((SECONDS - t0)) s; run commands with scripts/in-env"
