# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The layout's import rules hold: the import-linter contracts in setup.cfg, and what loads on import."""

import configparser
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _loaded_after(statement, prefixes):
    """The modules among ``prefixes`` that a fresh interpreter has loaded after ``statement``."""
    code = (f"import json, sys; {statement}; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {tuple(prefixes)!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_contracts_are_kept():
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache", "setup.cfg"], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    contracts = sum(1 for name in config.sections() if name.startswith("importlinter:contract:"))
    assert contracts >= 6 and f"Contracts: {contracts} kept, 0 broken." in done.stdout


def test_bag_play_and_record_load_without_torch():
    assert _loaded_after("import daain_ros.ros.bag_play, daain_ros.ros.bag_record", ["torch", "FrEIA"]) == []


def test_the_fleet_driver_loads_without_torch():
    """``daain fleet evaluate`` checks its options and drives Ray without torch; only its workers load it."""
    assert _loaded_after("import daain_ros.cli.fleet, daain_ros.fleet.evaluate", ["torch"]) == []


def test_io_loads_without_torch_and_rclpy():
    statement = ("import daain_ros.io.sources, daain_ros.io.rosbag, daain_ros.io.labels, daain_ros.io.synthetic, "
                 "daain_ros.io.images, daain_ros.io.image_codec")
    assert _loaded_after(statement, ["torch", "rclpy"]) == []


def test_core_and_reports_load_without_ray():
    statement = ("sys.modules['ray'] = None; import daain_ros.pipeline, daain_ros.detector.fit, daain_ros.results, "
                 "daain_ros.fleet.report, daain_ros.fleet.criteria, daain_ros.fleet.bags, daain_ros.cli.main")
    assert "daain_ros.fleet.report" in _loaded_after(statement, ["daain_ros"])


def test_core_imports_with_rclpy_absent():
    statement = ("sys.modules['rclpy'] = None; import daain_ros.pipeline, daain_ros.detector.fit, "
                 "daain_ros.detector.artifact, daain_ros.segmentation.espnet")
    assert "daain_ros.pipeline" in _loaded_after(statement, ["daain_ros"])
