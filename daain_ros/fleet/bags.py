# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Which bags a fleet run evaluates, where each one's outputs go, and which of them are already done.

Arguments are bag paths (a rosbag2 directory, .mcap or .db3) or glob patterns. A pattern keeps only the
bags it matches (a folder with ``metadata.yaml``, or a storage file outside such a folder); a path given
as such is kept even when it is broken, so that it is reported rather than silently dropped. Each bag's
outputs go to ``OUT/bags/<name>/``, ``<name>`` being the bag's name (its stem for a file), prefixed with
as many parent folders as needed to tell bags of the same name apart.
"""

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from daain_ros.errors import FleetError

BAGS_DIR = "bags"
STORAGE_SUFFIXES = (".mcap", ".db3")
#: What ``daain bag evaluate`` leaves in its output folder when it finished (bag_replay, bag_report).
COMPLETE_FILES = ("frames.csv", "summary.json", "report.md", "scores.png", "bag/metadata.yaml")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class FleetBag:
    """One bag of the run: its path, its name in the report and its output folder."""

    path: Path
    name: str
    out: Path


def _is_bag(path):
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.suffix in STORAGE_SUFFIXES and not (path.parent / "metadata.yaml").is_file()


def expand(arguments):
    """Bag paths in the order given, each pattern's matches sorted; duplicates once.

    :raises FleetError: when a pattern matches no bag, or nothing is given.
    """
    paths = []
    for argument in arguments:
        if _GLOB_CHARS & set(argument):
            matches = [Path(p) for p in sorted(glob.glob(argument, recursive=True)) if _is_bag(Path(p))]
            if not matches:
                raise FleetError(f"{argument}: matches no bag (a folder with metadata.yaml, .mcap or .db3)")
            paths.extend(matches)
        else:
            paths.append(Path(argument))
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise FleetError("no bags given: expected bag paths or glob patterns")
    return unique


def _stem(path):
    return path.stem if path.suffix in STORAGE_SUFFIXES else path.name


def bag_names(paths):
    """A unique, filesystem-safe name per bag: its stem, with parent folders joined by ``__`` where needed."""
    parts = [list(Path(p).resolve().parent.parts[1:]) for p in paths]
    names = [_stem(Path(p)) for p in paths]
    while len(set(names)) < len(names):
        counts = {name: names.count(name) for name in names}
        grown = False
        for i, name in enumerate(names):
            if counts[name] > 1 and parts[i]:
                names[i] = f"{parts[i].pop()}__{name}"
                grown = True
        if not grown:
            break
    if len(set(names)) < len(names):  # the same bag reached by two spellings of its path
        seen = {}
        for i, name in enumerate(names):
            seen[name] = seen.get(name, 0) + 1
            names[i] = name if seen[name] == 1 else f"{name}-{seen[name]}"
    return names


def fleet_bags(arguments, out):
    """The :class:`FleetBag` list of a run writing to ``out``."""
    paths = expand(arguments)
    return [FleetBag(path, name, Path(out) / BAGS_DIR / name) for path, name in zip(paths, bag_names(paths))]


def read_summary(bag):
    """The bag's ``summary.json`` when every output of a finished evaluation is there, else None."""
    if not all((bag.out / name).is_file() for name in COMPLETE_FILES):
        return None
    try:
        summary = json.loads((bag.out / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def is_complete(bag, settings):
    """Whether ``bag`` was evaluated to the end with these settings (``--resume`` skips it).

    :param settings: the keys of ``summary.json`` that must match: bag, model, detector, batch size, debounce,
        and the threshold when one was given.
    """
    summary = read_summary(bag)
    return summary is not None and all(summary.get(key) == value for key, value in settings.items())
