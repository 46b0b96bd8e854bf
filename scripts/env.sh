# Shared paths for scripts/setup.sh and scripts/in-env (sourced, not run).
# The venv lives outside the clone, keyed by the lock file, so clones and re-runs share it.
GROOT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GROOT_PYTHON="${GROOT_PYTHON:-/usr/bin/python3}"
GROOT_CACHE="${GROOT_ROS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/groot_ros}"
GROOT_LOCK_HASH="$({ cat "$GROOT_ROOT/requirements.lock"; "$GROOT_PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-12)"
GROOT_VENV="${GROOT_ROS_VENV:-$GROOT_CACHE/venv-$GROOT_LOCK_HASH}"
GROOT_WS="$GROOT_ROOT/.ws"
groot_source_ros() {
  # Ubuntu robot PCs have /opt/ros/<distro>; Debian packages ROS under /usr and needs nothing sourced.
  local distro_setup
  for distro_setup in /opt/ros/*/setup.bash; do
    [ -f "$distro_setup" ] && { set +u; source "$distro_setup"; break; }
  done
  [ -f "$GROOT_WS/devel/setup.bash" ] && { set +u; source "$GROOT_WS/devel/setup.bash"; }
  return 0
}
