# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Result documents assembled from what the producers wrote, never copied by hand: ``daain report``.

Each producer's JSON (``daain evaluate``'s ``results.json``, ``daain bench``'s JSON, ``daain bag
evaluate``'s and ``daain demo``'s ``summary.json``, ``daain fleet evaluate``'s ``fleet.json``, ``daain
defences``' ``defences.json``) is
rendered by the same function that writes that producer's own markdown, under a
heading with its provenance (date, commit, machine, command line), so every figure in ``docs/results.md``
says when, on what and how it was measured.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from daain_ros.bench import report as bench_report
from daain_ros.demo import report as demo_report
from daain_ros.errors import ResultFileError, one_line
from daain_ros.evaluation import bag_report, defence_report
from daain_ros.evaluation import report as evaluation_report
from daain_ros.fleet import report as fleet_report
from daain_ros.provenance import command_line, markdown_lines, provenance


@dataclass(frozen=True)
class Kind:
    """One producer: how to recognise its JSON, its heading, its renderer and its figures."""

    name: str
    title: str
    keys: frozenset
    render: object  # (document, level, figures prefix or None) -> markdown
    figures: tuple = ()


KINDS = (
    Kind("evaluate", "Evaluation: DAAIN against the baselines (`daain evaluate`)",
         frozenset({"rows", "clean_frames", "clean_flag_rate", "threshold"}),
         evaluation_report.markdown,
         tuple(evaluation_report.FIGURES.values())),
    Kind("defences", "Defences tried against the key-agnostic attacker (`daain defences`)",
         frozenset({"attackers", "defences", "threshold"}),
         defence_report.markdown),
    Kind("bench", "Benchmark: what DAAIN costs on top of ESPNet (`daain bench`)",
         frozenset({"espnet", "daain", "reference", "overhead", "node", "fit"}),
         lambda doc, level, figures: bench_report.markdown(doc, level)),
    Kind("bag", "Bag replay: a bag scored offline, frame by frame (`daain bag evaluate`)",
         frozenset({"frames_per_s", "longest_flagged_run", "topic", "bag"}),
         bag_report.section,
         (bag_report.PLOT_FILE,)),
    Kind("demo", "Demo: a drive with injected anomalies played into `detector_node` (`daain demo`)",
         frozenset({"parts", "segments", "segments_flagged", "metrics"}),
         demo_report.section,
         (demo_report.SCORES, demo_report.OVERLAY)),
    Kind("fleet", "Fleet: bags evaluated and judged on Ray workers (`daain fleet evaluate`)",
         frozenset({"bags", "overall", "workers", "passed"}),
         fleet_report.section,
         (fleet_report.PLOT_FILE,)),
)
#: The JSON a producer's output folder holds, in the order they are looked for.
FOLDER_FILES = ("results.json", "summary.json", fleet_report.JSON_FILE, defence_report.JSON_FILE)


@dataclass(frozen=True)
class Result:
    path: Path
    kind: Kind
    document: dict

    @property
    def folder(self):
        return self.path.parent


def load_result(path):
    """The result at ``path`` (an output folder or a JSON file) and which producer wrote it.

    :raises ResultFileError: not a file or folder, not JSON, or JSON of no known producer.
    """
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in FOLDER_FILES if (path / name).is_file()]
        if not found:
            raise ResultFileError(f"{path}: a folder without {' or '.join(FOLDER_FILES)} (expected the output "
                                  "folder of daain evaluate, daain bag evaluate, daain demo, daain fleet "
                                  "evaluate or daain defences, or a JSON file)")
        path = found[0]
    elif not path.is_file():
        raise ResultFileError(f"{path}: no such file or folder")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultFileError(f"{path}: not a JSON result ({one_line(exc)})") from exc
    keys = set(document) if isinstance(document, dict) else set()
    kind = next((kind for kind in KINDS if kind.keys <= keys), None)
    if kind is None:
        raise ResultFileError(f"{path}: not a result of daain evaluate, daain bench, daain bag evaluate, daain demo, "
                              "daain fleet evaluate or daain defences (expected results.json, a bench JSON, "
                              "summary.json, fleet.json or defences.json)")
    return Result(path, kind, document)


def result_provenance(result):
    """The producer's provenance; for a bench JSON written before it recorded one, what its machine says."""
    recorded = result.document.get("provenance")
    machine = result.document.get("machine")
    if recorded is None and result.kind.name == "bench" and isinstance(machine, dict):
        recorded = {"date": machine.get("started"), "commit": machine.get("commit"), "command": None,
                    "machine": {**machine, "load_average": machine.get("load_average_start")}}
    return recorded


def section(result, out_dir, figures_dir, level=2):
    """One result as a markdown section: heading, source, provenance, then the producer's own rendering.

    Its figures are copied into ``figures_dir`` and linked relative to ``out_dir``.
    """
    lines = [f"{'#' * level} {result.kind.title}", "", f"- source: `{result.path}`",
             *markdown_lines(result_provenance(result))]
    load_end = (result.document.get("machine") or {}).get("load_average_end")
    if result.kind.name == "bench" and load_end:
        lines.append("- load average at the end: " + " / ".join(f"{value:.2f}" for value in load_end))
    prefix = _copy_figures(result, out_dir, figures_dir)
    try:
        body = result.kind.render(result.document, level + 1, prefix)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultFileError(f"{result.path}: an incomplete {result.kind.name} result "
                              f"({type(exc).__name__}: {one_line(exc)})") from exc
    return "\n".join([*lines, "", body.rstrip("\n"), ""])


def _copy_figures(result, out_dir, figures_dir):
    """Copies the result's PNGs beside the document; their link prefix, or None when it has none."""
    present = [name for name in result.kind.figures if (result.folder / name).is_file()]
    if not present:
        return None
    figures_dir.mkdir(parents=True, exist_ok=True)
    for name in present:
        shutil.copyfile(result.folder / name, figures_dir / name)
    return Path(os.path.relpath(figures_dir, out_dir)).as_posix() + "/"


def assemble(out, inputs, argv=None):
    """Writes the markdown document ``out`` from the results ``inputs``; returns its path.

    Every input is read before anything is written, so a bad one leaves ``out`` as it was.
    :param argv: the command line that assembles it, recorded in the document (default ``sys.argv``).
    """
    out = Path(out)
    if out.is_dir():
        raise ResultFileError(f"{out}: a folder (expected the markdown file to write)")
    results = [load_result(path) for path in inputs]
    if not results:
        raise ResultFileError("no inputs: expected evaluate or demo output folders, or their JSON, or bench JSON")
    origin = provenance(argv)
    names = _section_names(results)
    lines = ["# Results", "",
             f"Generated by `{command_line(origin['command'])}` on {origin['date']} (commit "
             f"{origin['commit'] or 'unknown'}) from the JSON that each producer wrote: do not edit by hand, run "
             "the command again. Every section says when, on what machine and with what command its numbers "
             "were measured.", ""]
    benches = [(result.path.name, result_provenance(result), result.document) for result in results
               if result.kind.name == "bench"]
    if len(benches) > 1:
        lines += ["## Benchmark runs at a glance", "", "Each bench run's timed cases, in the order of the sections "
                  "below (whole camera frames, memory, contention and fit are in each run's own section). A dash: "
                  "not measured in that run.", "", bench_report.overview(benches)]
    figures_root = out.parent / out.stem
    for result, name in zip(results, names):
        lines.append(section(result, out.parent, figures_root / name))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out


def _section_names(results):
    """A folder name per result for its figures: the producer's name, numbered when it repeats."""
    counts, names = {}, []
    for result in results:
        counts[result.kind.name] = counts.get(result.kind.name, 0) + 1
        names.append(result.kind.name if counts[result.kind.name] == 1 else
                     f"{result.kind.name}-{counts[result.kind.name]}")
    return names
