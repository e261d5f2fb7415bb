# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The package as a ROS user builds and tests it.

``colcon build`` in a temporary workspace, ``colcon test`` with the ament linters and the launch test, then ``colcon
test-result``.

One build and one test run serve every check here. The tools come from a ROS 2 install or, in this
repository's venv, from ../shared/ros2 (``make setup``); without them the tests skip.
"""

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: Not part of the package: the checkout's venv, build outputs and caches.
LEFT_OUT = {".git", ".venv", "build", "install", "log", "out", ".pytest_cache", ".import_linter_cache"}
COLCON_TESTS = ["test/test_flake8.py", "test/test_pep257.py", "test/test_copyright.py", "test/test_launch.py"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def tool(name):
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip(f"{name} is missing: it comes with a ROS 2 install, or from ../shared/ros2 with `make setup`")
    return path


def left_out(directory, names):
    top = Path(directory) == REPO
    return [n for n in names if (top and n in LEFT_OUT) or n == "__pycache__" or n.endswith(".egg-info")]


def run(command, cwd, env, what, timeout=600):
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{what} exited with {done.returncode}:\n{done.stdout[-6000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace with the package built and tested by colcon; its environment."""
    colcon, _ = tool("colcon"), tool("ros2")
    ws = tmp_path_factory.mktemp("colcon_ws")
    shutil.copytree(REPO, ws / "src" / "daain_ros", ignore=left_out)
    prefix = str(Path(sys.prefix))  # the venv's ament index: launch, launch_ros, ros2cli, ...
    # the package's own pytest run is no pytest-xdist worker (conftest.py would take it for one): it keeps this
    # worker's DDS domain, which nothing else uses while this worker waits for colcon
    outer = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")}
    env = {**outer, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLCON_HOME": str(ws / ".colcon"),
           "AMENT_PREFIX_PATH": os.pathsep.join(p for p in (os.environ.get("AMENT_PREFIX_PATH"), prefix) if p)}
    run([colcon, "build", "--event-handlers", "console_direct-"], ws, env, "colcon build")
    # as a user does: source the workspace, then test (failures are read by colcon test-result below)
    test = (f"source install/setup.bash && {colcon} test --event-handlers console_direct- "
            f"--pytest-args {' '.join(COLCON_TESTS)}")
    run(["bash", "-c", test], ws, env, "colcon test")
    return ws, env


def test_colcon_build_installs_the_node_launch_file_config_and_model(workspace):
    ws, _ = workspace
    prefix = ws / "install" / "daain_ros"
    for path in ("lib/daain_ros/detector_node", "share/daain_ros/package.xml",
                 "share/daain_ros/launch/detector.launch.py", "share/daain_ros/config/detector.yaml",
                 "share/daain_ros/config/fastdds.xml", "share/ament_index/resource_index/packages/daain_ros"):
        assert (prefix / path).is_file(), path
    assert os.access(prefix / "lib" / "daain_ros" / "detector_node", os.X_OK)
    models = list((prefix / "lib").glob("python3*/site-packages/daain_ros/demo/default/espnet_default.safetensors"))
    assert len(models) == 1


def test_colcon_test_result_reports_tests_and_no_failures(workspace):
    ws, env = workspace
    out = run([tool("colcon"), "test-result", "--test-result-base", "build", "--verbose"], ws, env,
              "colcon test-result")
    summary = re.search(r"Summary: (\d+) tests, (\d+) errors, (\d+) failures, (\d+) skipped", out)
    assert summary, out
    tests, errors, failures, skipped = map(int, summary.groups())
    assert tests > 0 and (errors, failures, skipped) == (0, 0, 0), out


def test_colcon_test_ran_the_lint_and_launch_tests(workspace):
    ws, _ = workspace
    cases = ElementTree.parse(ws / "build" / "daain_ros" / "pytest.xml").getroot().iter("testcase")
    ran = {case.get("name") for case in cases if case.find("skipped") is None}
    assert {"test_flake8", "test_pep257", "test_copyright", "test_launch"} <= ran, ran
