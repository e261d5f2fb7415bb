# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain report``: one markdown document from the results of several producers.

The producers: ``daain evaluate``, ``bench``, ``bag evaluate``, ``demo``, ``fleet evaluate`` and ``defences``.
"""

from pathlib import Path


def register(sub):
    parser = sub.add_parser("report", help="assemble results (evaluate, bench, bag evaluate, demo, fleet evaluate, "
                                           "defences) into one markdown document",
                            description="Renders each INPUT under a heading with its date, commit, machine and "
                                        "command line; its figures are copied into a folder named after OUT "
                                        "(docs/results.md: docs/results/).")
    parser.add_argument("out", type=Path, metavar="OUT.md", help="markdown file to write (e.g. docs/results.md)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="an output folder of daain evaluate, daain bag evaluate, daain demo, daain fleet "
                             "evaluate or daain defences (or its results.json, summary.json, fleet.json or "
                             "defences.json), or the JSON of daain bench")
    parser.set_defaults(run=run)


def run(args):
    from daain_ros.results import assemble  # the renderers load plotting and torch; only this command needs them

    print(f"wrote {assemble(args.out, args.inputs)}")
