# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Replay a bag's image topic through the detector offline, batched, without DDS (``daain bag evaluate``).

Frames stream from the bag in batches of ``batch_size``; each gets a row in ``frames.csv`` and its
outputs in ``OUT/bag`` (the input image plus ``/daain/segmentation``, ``/daain/anomaly`` and
``/daain/score`` on the frame's own stamp, as ``detector_node`` would publish them). A frame that
cannot be read (invalid CDR, an unsupported encoding, a malformed image) is judged anomalous (fail
closed), counted and listed. ``summary.json``, ``report.md`` and ``scores.png`` follow at the end
(:mod:`daain_ros.evaluation.bag_report`). Memory stays flat in the bag's length: only one batch of frames and a
few numbers per frame are held.
"""

import csv
import math
import time
from pathlib import Path

from tqdm import tqdm

from daain_ros.errors import DaainError, DataSourceError
from daain_ros.io.labels import LABELS_FILE, read_labels
from daain_ros.io.rosbag import BagWriter, image_topic, read_images
from daain_ros.ros.debounce import KOfN

SEGMENTATION_TOPIC = "/daain/segmentation"
ANOMALY_TOPIC = "/daain/anomaly"
SCORE_TOPIC = "/daain/score"
FRAMES_FILE = "frames.csv"
OUTPUT_BAG = "bag"
COLUMNS = ("index", "stamp_ns", "time_s", "label", "score", "threshold", "flag", "debounced_flag",
           "latency_ms", "error")


def batches(frames, size):
    """Lists of consecutive frames holding ``size`` readable ones (the last may hold fewer)."""
    batch, readable = [], 0
    for frame in frames:
        batch.append(frame)
        readable += frame.error is None
        if readable == size:
            yield batch
            batch, readable = [], 0
    if batch:
        yield batch


class OutputBag(BagWriter):
    """The output bag: the input messages as they were, and the detector's topics."""

    def add_message(self, topic, stamp_ns, msg):
        self._write(topic, stamp_ns, msg)


def _labels(bag, path):
    if path is not None:
        return read_labels(path), Path(path)
    default = bag / LABELS_FILE
    return (read_labels(default), default) if default.is_file() else (None, None)


class UnreadableBagError(DataSourceError):
    """Not one frame of the topic could be read; the evaluation's files, summary included, are written."""

    def __init__(self, message, summary):
        super().__init__(message)
        self.summary = summary


class Evaluation:
    """Runs the pipeline over a bag, writing frames.csv and the output bag as it goes."""

    def __init__(self, pipeline, topic, labels, debounce, records):
        self.pipeline, self.topic, self.labels = pipeline, topic, labels
        self.debounce, self.records = debounce, records
        self.first_ns = self.out_bag = self.rows = None

    def replay(self, bag, count, out, batch_size, progress=True):
        """Writes ``OUT/frames.csv`` and the output bag; removes the table when the replay fails part-way."""
        csv_path = out / FRAMES_FILE
        try:
            with OutputBag(out / OUTPUT_BAG) as out_bag, open(csv_path, "w", newline="") as table:
                self.out_bag, self.rows = out_bag, csv.writer(table)
                self.rows.writerow(COLUMNS)
                with tqdm(total=count, desc=f"evaluate {self.topic}", unit="frame", disable=not progress) as bar:
                    self._run(read_images(bag, self.topic), batch_size, bar)
        except BaseException:
            csv_path.unlink(missing_ok=True)  # a half table would read as a finished evaluation
            raise

    def _run(self, frames, batch_size, progress):
        for batch in batches(frames, batch_size):
            images = [f.image for f in batch if f.error is None]
            results, latency = iter(()), math.nan
            if images:
                start = time.perf_counter()
                results = iter(self.pipeline.process(images))
                latency = (time.perf_counter() - start) / len(images)
            for frame in batch:
                self._record(frame, next(results) if frame.error is None else None, latency)
            progress.update(len(batch))

    def _record(self, frame, result, latency):
        self.first_ns = frame.stamp_ns if self.first_ns is None else self.first_ns
        kind = self.labels.kind_at(frame.stamp_ns) if self.labels is not None else None
        flag = True if result is None else result.anomalous
        debounced = self.debounce.update(flag)
        score = math.nan if result is None else result.score
        error = None if frame.error is None else str(frame.error)
        self.records.add(frame.index, frame.stamp_ns, kind, score, flag, debounced,
                         math.nan if result is None else latency, error)
        scored = result is not None
        self.rows.writerow([frame.index, frame.stamp_ns, f"{(frame.stamp_ns - self.first_ns) / 1e9:.6f}",
                            kind or "", f"{score:.6g}" if scored else "", f"{self.pipeline.threshold:.6g}",
                            int(flag), int(debounced), f"{latency * 1e3:.2f}" if scored else "",
                            error or ""])
        self._write_outputs(frame, result, debounced)

    def _write_outputs(self, frame, result, debounced):
        if frame.msg is not None:
            self.out_bag.add_message(self.topic, frame.log_ns, frame.msg)
        if result is not None:
            frame_id = frame.msg.header.frame_id
            self.out_bag.add_image_labels(SEGMENTATION_TOPIC, frame.stamp_ns, result.labels, frame_id)
            self.out_bag.add_float32(SCORE_TOPIC, frame.stamp_ns, result.score)
        self.out_bag.add_bool(ANOMALY_TOPIC, frame.stamp_ns, debounced)


def evaluate_bag(bag, *, detector, model, out, topic=None, labels=None, threshold=None, debounce_k=1,
                 debounce_n=1, batch_size=8, device="auto", backend="torch", threads=None, onnx=None, spin=False,
                 compile="auto", pipeline=None, argv=None, progress=True):  # noqa: A002 (the option's name)
    """Scores every frame of a bag's image topic and writes the evaluation to ``out``; returns its summary.

    Writes ``frames.csv``, the output bag ``OUT/bag`` (which must not exist), ``summary.json``,
    ``report.md`` and ``scores.png``.

    :param topic: Image or CompressedImage topic; default the labels' topic, else the bag's image topic.
    :param labels: anomaly labels file; default ``BAG/labels.json`` when present.
    :param threshold: overrides the detector's calibrated threshold.
    :param debounce_k: the flag rises while ``debounce_k`` of the last ``debounce_n`` frames are anomalous.
    :param backend: ``torch`` or ``onnxruntime``, with ``threads``, ``onnx``, ``spin`` and ``compile`` as
        :meth:`~daain_ros.pipeline.Pipeline.load` takes them.
    :param pipeline: a :class:`~daain_ros.pipeline.Pipeline` already loaded from ``model`` and ``detector``
        (a fleet worker loads it once for many bags); it carries its own device, backend and threshold, so
        ``device`` and the backend's settings are unused and ``threshold`` must be None. Default: loaded here.
    :param argv: the command line recorded in the provenance (default ``sys.argv``).
    :param progress: show a progress bar of the frames.
    :returns: the summary of :func:`daain_ros.evaluation.bag_report.write` (as in ``summary.json``).
    :raises UnreadableBagError: when no frame could be read (the files are written all the same).
    """
    from daain_ros.evaluation import bag_report  # matplotlib and torch load only when a bag is evaluated
    from daain_ros.pipeline import Pipeline
    from daain_ros.provenance import provenance

    bag, out = Path(bag), Path(out)
    if batch_size < 1:
        raise DaainError(f"--batch-size {batch_size}: expected a positive number of frames")
    debounce = KOfN(debounce_k, debounce_n)
    labels, labels_path = _labels(bag, labels)
    topic, count = image_topic(bag, topic or (labels.topic if labels is not None else None))
    if (out / OUTPUT_BAG).exists():
        raise DataSourceError(f"{out / OUTPUT_BAG} exists already: evaluate into a new --out directory")
    if pipeline is not None and threshold is not None:
        raise DaainError(f"threshold {threshold} with an already loaded pipeline: expected None (the pipeline's "
                         f"threshold, {pipeline.threshold:.6g}, is set when it is loaded)")
    origin = provenance(argv)
    if pipeline is None:
        pipeline = Pipeline.load(model, detector, device, threshold, backend, threads, onnx=onnx, spin=spin,
                                 compile=compile)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    evaluation = Evaluation(pipeline, topic, labels, debounce, bag_report.FrameRecords())
    evaluation.replay(bag, count, out, batch_size, progress)
    setup = dict(bag=str(bag), topic=topic, model=str(model), detector=str(detector),
                 labels=None if labels_path is None else str(labels_path), device=str(pipeline.device),
                 backend=pipeline.backend.name,
                 batch_size=batch_size, threshold=pipeline.threshold,
                 debounce=dict(k=debounce.k, n=debounce.n), wall_s=round(time.perf_counter() - started, 3),
                 provenance=origin)
    summary = bag_report.write(out, evaluation.records, labels, setup)
    if summary["frames"] == summary["unreadable"]:
        raise UnreadableBagError(f"{bag}: none of the {summary['frames']} frames of {topic} could be read; "
                                 f"first: {evaluation.records.errors[0][2]}", summary)
    return summary
