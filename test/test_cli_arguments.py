# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Counts given on the command line: 0 or a negative number is refused in one line, before any work.

Before, ``daain score --batch-size 0`` gathered every frame of a source into one batch, and ``daain fit
--dims 0``, ``--epochs 0``, ``--blocks 0`` or ``--augment -1`` ended in a traceback after loading the model.
"""

import pytest

from daain_ros.cli.main import main
from daain_ros.demo.default_assets import DEFAULT_DIR, MODEL_FILE

MODEL, DETECTOR = str(DEFAULT_DIR / MODEL_FILE), str(DEFAULT_DIR / "detector")
OUT = "OUT"  # replaced by a path in the test's folder, which must still be absent afterwards
FIT = ["fit", "--model", MODEL, "--data", "synthetic:3:4", "--out", OUT]
EVALUATE = ["evaluate", "--detector", DETECTOR, "--model", MODEL, "--data", "synthetic:9:2", "--out", OUT]
CASES = [
    (["score", "synthetic:3:2", "--model", MODEL, "--detector", DETECTOR], "--batch-size", "0", 1),
    (FIT, "--dims", "0", 1),
    (FIT, "--epochs", "0", 1),
    (FIT, "--blocks", "0", 1),
    (FIT, "--hidden", "0", 1),
    (FIT, "--augment", "-1", 0),
    (EVALUATE, "--attack-steps", "0", 1),
    (EVALUATE, "--mc-passes", "-1", 0),
    (["bench", "--model", MODEL, "--out", OUT], "--block", "0", 1),
    (["bag", "evaluate", "missing_bag", "--detector", DETECTOR, "--model", MODEL, "--out", OUT], "--batch-size", "-2",
     1),
    (["fleet", "evaluate", "missing_bag", "--detector", DETECTOR, "--model", MODEL, "--out", OUT], "--workers", "0",
     1),
]


def _name(command):
    """The (sub-)command as its errors name it: ``fit``, ``bag evaluate``."""
    return " ".join(command[:2]) if command[0] in ("bag", "fleet") else command[0]


@pytest.mark.parametrize(("command", "option", "value", "least"), CASES,
                         ids=[f"{_name(command)} {option}" for command, option, _, _ in CASES])
def test_a_count_below_its_least_is_one_line_and_exit_2(command, option, value, least, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(out) if word == OUT else word for word in command] + [option, value]) == 2
    printed = capsys.readouterr()
    name = _name(command)
    assert printed.err == (f"daain {name}: error: argument {option}: expected an integer of at least {least}, "
                           f"got {value} (see daain {name} --help)\n")
    assert printed.out == "" and not out.exists()


def test_a_word_where_a_count_belongs_is_one_line_too(tmp_path, capsys):
    assert main([str(tmp_path / "out") if word == OUT else word for word in FIT] + ["--epochs", "many"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "daain fit: error: argument --epochs: expected an integer, got 'many' (see daain fit --help)"]
