"""The package's rooms and their rules, enforced: no import cycles (lazy imports included), each room importing
only the rooms the README's "may import" table names (and the table says the same as MAY_IMPORT here), core/
and execution/ free of rospy and torch, policy/ free of rospy, nothing importing cli, every module installed."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "groot_ros"
ROS = ("rospy", "rosbag", "rosgraph", "roslaunch", "rostopic", "genpy", "cv_bridge", "diagnostic_updater")
TORCH = ("torch", "torchvision", "lerobot", "transformers", "safetensors.torch", "diffusers")
FORBIDDEN = {"core": ROS + TORCH, "execution": ROS + TORCH, "policy": ROS}
README = SRC.parent / "README.md"
# Which rooms (or single modules of one) each room may import; the README's layout table lists the same.
PRODUCT_ROOMS = ("core", "execution", "policy", "ros", "sim", "tools")  # testing/ serves the tests alone
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "core": (),
    "execution": ("core",),
    "policy": ("core",),
    "ros": ("core", "execution", "policy", "tools"),
    "sim": ("core", "ros.messages", "ros.kuavo_versions"),
    "tools": ("core", "execution", "policy"),
    "demo": PRODUCT_ROOMS,
    "bench": PRODUCT_ROOMS,
    "testing": ("core", "policy", "ros.messages", "ros.kuavo_versions"),
    "cli": PRODUCT_ROOMS + ("demo", "bench"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, name: str) -> set[str]:
    """Every module name this file imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def internal_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(path, name) if m in known and m != name} for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(internal_graph()) == []


def test_cycle_finder_sees_a_lazy_cycle():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_nothing_forbidden(room):
    bad = {}
    for name, path in modules().items():
        if name.startswith(f"groot_ros.{room}."):
            hits = sorted(m for m in imports(path, name) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN[room]))
            if hits:
                bad[name] = hits
    assert bad == {}, f"{room}/ must not import {FORBIDDEN[room]}"


def _allowed(room: str, target: str) -> bool:
    """target: a module of another room; a bare room package (`from groot_ros.ros import messages`) is the
    namespace only, judged by the module named with it."""
    name = target.removeprefix("groot_ros.")
    if "." not in name:
        return True
    return any(name == a or name.startswith(a + ".") for a in MAY_IMPORT[room])


def test_every_room_imports_only_what_the_table_allows():
    known_rooms = set(MAY_IMPORT)
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert rooms == known_rooms, "a room without a row in MAY_IMPORT (and the README's table)"
    bad = {}
    for name, deps in internal_graph().items():
        room = name.split(".")[1] if name.count(".") >= 2 else None
        if room is None:
            continue
        # the bare package (`from groot_ros import __version__`) belongs to no room
        hits = sorted(d for d in deps if "." in d and d.split(".")[1] != room and not _allowed(room, d))
        if hits:
            bad[name] = hits
    assert bad == {}, "imports the README's layout table does not allow"


def test_the_readme_table_says_what_is_enforced():
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith("/`"):
            room = cells[0].strip("`/")
            rows[room] = tuple(t for t in cells[2].split("`")[1::2] if t.split(".")[0] in MAY_IMPORT)
    assert set(rows) == set(MAY_IMPORT)
    for room, allowed in MAY_IMPORT.items():
        assert set(rows[room]) == set(allowed), f"README row {room}/: {sorted(rows[room])}, enforced: {sorted(allowed)}"


def test_nothing_imports_cli():
    bad = sorted(name for name, deps in internal_graph().items()
                 if not name.startswith("groot_ros.cli") and name != "groot_ros.__main__"
                 and any(d == "groot_ros.cli" or d.startswith("groot_ros.cli.") for d in deps))
    assert bad == []


BLOCKER = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys
    blocked = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{name} is blocked in this room")
    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[3])
    room = importlib.import_module(sys.argv[2])
    for info in pkgutil.walk_packages(room.__path__, room.__name__ + "."):
        importlib.import_module(info.name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
    assert not leaked, leaked
    print("ok", room.__name__)
""")


@pytest.mark.parametrize("room, blocked", [("groot_ros.core", "rospy,torch"), ("groot_ros.execution", "rospy,torch"),
                                           ("groot_ros.policy", "rospy"), ("groot_ros.ros.backends.config", "rospy")])
def test_room_imports_without(room, blocked):
    if room.endswith(".config"):  # a module, not a package: import it alone
        code = BLOCKER.replace("for info in pkgutil.walk_packages(room.__path__, room.__name__ + \".\"):\n"
                               "    importlib.import_module(info.name)\n", "")
    else:
        code = BLOCKER
    result = subprocess.run([sys.executable, "-c", code, blocked, room, str(SRC)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_setup_py_installs_every_module():
    """What catkin installs is what setup.py hands setuptools: run it with setup() captured, and every .py file on
    disk must lie in a listed package (a folder without __init__.py would be left out of install spaces)."""
    import runpy
    from unittest import mock

    captured: dict = {}
    with mock.patch("setuptools.setup", lambda **kwargs: captured.update(kwargs)):
        runpy.run_path(str(SRC.parent / "setup.py"), run_name="__main__")
    packages = set(captured["packages"])
    assert captured["package_dir"] == {"": "src"}
    left_out = sorted(str(p.relative_to(SRC)) for p in PACKAGE.rglob("*.py")
                      if module_name(p.parent / "__init__.py") not in packages)
    assert left_out == [], "not installed (no __init__.py in their folder?)"
