# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Pass/fail criteria per bag, in the spirit of Autoware's driving_log_replayer: a YAML file of limits.

A bag without labelled anomaly segments is a clean drive: the monitor must stay quiet on it. A bag with
segments (its ``labels.json``) must have every segment caught in time. The file::

    clean:                        # bags without labelled segments
      max_flagged_percent: 2      # at most this share of frames flagged (raw flags, unreadable frames count)
      max_run_s: 1.0              # no debounced flag held longer than this many seconds
    labelled:                     # bags with labelled segments
      detect_within_s: 0.5        # each segment's debounced flag raised within this time of its start
    bags:                         # optional: patterns with their own limits; the first that matches wins
      - match: "night_*"          # fnmatch pattern on the bag's name (OUT/bags/<name>) or its path
        clean: {max_flagged_percent: 10}

A limit left out is not checked; a pattern's section replaces only the limits it names. A flag held for
a run of n frames lasts n frame intervals (the bag's mean). A bag that could not be evaluated fails.
"""

import fnmatch
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from daain_ros.errors import FleetError, one_line

PASS, FAIL, ERROR = "pass", "fail", "error"
_SECTIONS = {"clean": ("max_flagged_percent", "max_run_s"), "labelled": ("detect_within_s",)}


@dataclass(frozen=True)
class Criteria:
    """The limits one bag is judged by; None = not checked."""

    max_flagged_percent: float = None
    max_run_s: float = None
    detect_within_s: float = None

    def merged(self, sections):
        """These limits with those named in ``sections`` (``{"clean": {...}, "labelled": {...}}``) replaced."""
        return replace(self, **{key: value for section in sections.values() for key, value in section.items()})


@dataclass(frozen=True)
class CriteriaFile:
    """The default limits and the patterns with their own, as read from the YAML file."""

    default: Criteria
    patterns: tuple = ()
    path: str = None

    def for_bag(self, name, path):
        """The limits of the bag named ``name`` at ``path``: the first matching pattern's, else the default."""
        for pattern, criteria in self.patterns:
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(str(path), pattern):
                return criteria, pattern
        return self.default, None

    def to_dict(self):
        """What fleet.json records."""
        return {"path": self.path, "default": asdict(self.default),
                "bags": [{"match": pattern, **asdict(criteria)} for pattern, criteria in self.patterns]}


def _limits(path, where, body):
    if not isinstance(body, dict):
        raise FleetError(f"{path}: {where} is {type(body).__name__}: expected a mapping of sections")
    sections = {}
    for section, values in body.items():
        if section not in _SECTIONS:
            raise FleetError(f"{path}: {where} has section {section!r}: expected {' or '.join(_SECTIONS)}")
        if not isinstance(values, dict):
            raise FleetError(f"{path}: {where}.{section} is {type(values).__name__}: expected a mapping")
        sections[section] = {}
        for key, value in values.items():
            if key not in _SECTIONS[section]:
                raise FleetError(f"{path}: {where}.{section}.{key}: unknown limit; expected "
                                 f"{', '.join(_SECTIONS[section])}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise FleetError(f"{path}: {where}.{section}.{key} = {value!r}: expected a number >= 0")
            sections[section][key] = float(value)
    return sections


def read_criteria(path):
    """The :class:`CriteriaFile` at ``path``; a file that is not as documented is one :class:`FleetError`."""
    path = Path(path)
    try:
        body = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FleetError(f"{path}: cannot read criteria ({one_line(exc)})") from exc
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise FleetError(f"{path}: criteria are {type(body).__name__}: expected a mapping")
    patterns = body.pop("bags", None) or []
    default = Criteria().merged(_limits(path, "the file", body))
    if not isinstance(patterns, list):
        raise FleetError(f"{path}: bags is {type(patterns).__name__}: expected a list of {{match: PATTERN, ...}}")
    matched = []
    for number, entry in enumerate(patterns):
        entry = dict(entry) if isinstance(entry, dict) else {}
        pattern = entry.pop("match", None)
        if not isinstance(pattern, str) or not pattern:
            raise FleetError(f"{path}: bags[{number}] has no match pattern: expected {{match: PATTERN, ...}}")
        matched.append((pattern, default.merged(_limits(path, f"bags[{number}]", entry))))
    return CriteriaFile(default, tuple(matched), str(path))


def frame_interval_s(summary):
    """The bag's mean frame interval in seconds (0 for a single frame)."""
    frames = summary.get("frames") or 0
    return summary["duration_s"] / (frames - 1) if frames > 1 else 0.0


def run_seconds(summary):
    """How long the longest debounced flag was held: its frames times the mean frame interval."""
    return summary["longest_debounced_run"]["frames"] * frame_interval_s(summary)


def is_labelled(summary):
    """A bag with labelled anomaly segments (labels without segments describe a clean drive)."""
    return bool(summary.get("segments"))


def _segment_reasons(summary, limit):
    reasons = []
    for segment in summary["segments"]:
        name = f"{segment['kind']}:{segment['start']}-{segment['end']}"
        if not segment["detected"]:
            reasons.append(f"{name} not detected")
        elif limit is not None and segment["first_flag_s"] > limit:
            reasons.append(f"{name} detected after {segment['first_flag_s']:.3f} s > {limit:g} s")
    return reasons


def _clean_reasons(summary, criteria):
    reasons = []
    percent = 100 * (summary.get("flagged_share") or 0.0)
    if criteria.max_flagged_percent is not None and percent > criteria.max_flagged_percent:
        reasons.append(f"{percent:.2f} % of frames flagged > {criteria.max_flagged_percent:g} %")
    held = run_seconds(summary)
    if criteria.max_run_s is not None and held > criteria.max_run_s:
        reasons.append(f"flag held {held:.3f} s ({summary['longest_debounced_run']['frames']} frames) "
                       f"> {criteria.max_run_s:g} s")
    return reasons


def judge(summary, criteria):
    """(verdict, reasons) of one evaluated bag: ``pass`` or ``fail`` with what failed.

    Every segment of a labelled bag must be detected (within ``detect_within_s`` when set); a clean bag
    is held to ``max_flagged_percent`` and ``max_run_s``.
    """
    if summary.get("frames") == summary.get("unreadable"):
        return ERROR, ["no frame could be read"]
    reasons = (_segment_reasons(summary, criteria.detect_within_s) if is_labelled(summary)
               else _clean_reasons(summary, criteria))
    return (FAIL if reasons else PASS), reasons
