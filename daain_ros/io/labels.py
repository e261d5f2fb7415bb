# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Ground truth of a bag with injected anomalies: ``labels.json`` inside the bag directory.

rosbag2 tools ignore files they did not write, so the labels travel with the bag. A segment covers the
source frames ``start`` (inclusive) to ``end`` (exclusive) and the header stamps ``start_ns`` (inclusive)
to ``end_ns`` (exclusive); a frame is anomalous exactly when its stamp falls in one.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from daain_ros.errors import DataSourceError

LABELS_FILE = "labels.json"
FORMAT = "daain-bag-labels"
VERSION = 1


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` to ``end`` (exclusive) carry anomaly ``kind``."""

    kind: str
    start: int
    end: int
    start_ns: int = None
    end_ns: int = None

    def __str__(self):
        return f"{self.kind}:{self.start}-{self.end}"


def parse_segment(text):
    """``"KIND:START-END"`` -> :class:`Segment` (START inclusive, END exclusive, END > START >= 0)."""
    kind, sep, span = text.partition(":")
    start, dash, end = span.partition("-")
    try:
        start, end = int(start), int(end)
    except ValueError:
        start = end = None
    if not (sep and dash and kind) or start is None or start < 0 or end <= start:
        raise DataSourceError(f"anomaly segment {text!r}: expected KIND:START-END with frame indices "
                              "0 <= START < END (END exclusive), e.g. fog:150-180")
    return Segment(kind, start, end)


def check_segments(segments, first=0, stop=None):
    """Segments sorted by start; they must not overlap and must lie in frames ``first`` to ``stop``."""
    segments = sorted(segments, key=lambda s: s.start)
    for before, after in zip(segments, segments[1:]):
        if after.start < before.end:
            raise DataSourceError(f"anomaly segments {before} and {after} overlap")
    for segment in segments:
        if segment.start < first or (stop is not None and segment.end > stop):
            raise DataSourceError(f"anomaly segment {segment} lies outside the frames written "
                                  f"({first}-{'end' if stop is None else stop})")
    return segments


@dataclass(frozen=True)
class BagLabels:
    """What ``daain bag from-video/from-images`` wrote: the topic, its timing and the anomaly segments."""

    topic: str
    rate_hz: float
    epoch_ns: int
    first_frame: int
    frame_count: int
    segments: tuple
    source: str = ""
    compressed_topic: str = None
    perturbation: dict = None

    def kind_at(self, stamp_ns):
        """The anomaly kind of the frame stamped ``stamp_ns``, or None for a clean frame."""
        for segment in self.segments:
            if segment.start_ns <= stamp_ns < segment.end_ns:
                return segment.kind
        return None


def _segment_json(segment):
    return dict(asdict(segment), start_s=segment.start_ns / 1e9, end_s=segment.end_ns / 1e9)


def write_labels(bag_dir, labels):
    """Writes ``bag_dir/labels.json`` (stamps in ns and in seconds since the Unix epoch)."""
    body = {key: value for key, value in asdict(labels).items() if key != "segments"}
    body = dict(format=FORMAT, version=VERSION, **body, kinds=sorted({s.kind for s in labels.segments}),
                segments=[_segment_json(s) for s in labels.segments])
    path = Path(bag_dir) / LABELS_FILE
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def read_labels(bag_dir):
    """The :class:`BagLabels` of a bag directory (or of a labels.json path)."""
    path = Path(bag_dir)
    path = path if path.suffix == ".json" else path / LABELS_FILE
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"{path}: cannot read anomaly labels: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("version") != VERSION:
        raise DataSourceError(f"{path}: not a {FORMAT} file of version {VERSION}")
    try:
        segments = tuple(Segment(s["kind"], s["start"], s["end"], s["start_ns"], s["end_ns"])
                         for s in body["segments"])
        fields = {k: body[k] for k in BagLabels.__dataclass_fields__ if k != "segments" and k in body}
        return BagLabels(segments=segments, **fields)
    except (KeyError, TypeError) as exc:
        raise DataSourceError(f"{path}: malformed anomaly labels ({exc!r} missing or wrong)") from exc
