"""``daain bag evaluate``: replay a bag's image topic through the detector offline, batched, without DDS.

Frames stream from the bag in batches of ``--batch-size``; each gets a row in ``frames.csv`` and its
outputs in ``OUT/bag`` (the input image plus ``/daain/segmentation``, ``/daain/anomaly`` and
``/daain/score`` on the frame's own stamp, as ``detector_node`` would publish them). A frame that
cannot be read (invalid CDR, an unsupported encoding, a malformed image) is judged anomalous (fail
closed), counted and listed. ``summary.json``, ``report.md`` and ``scores.png`` follow at the end
(:mod:`daain_ros.evaluation.bag_report`). Memory stays flat in the bag's length: only one batch of frames and a
few numbers per frame are held.
"""

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from daain_ros.io.labels import LABELS_FILE, read_labels
from daain_ros.io.rosbag import (COMPRESSED_IMAGE, IMAGE, IMAGE_TYPES, BagWriter, bag_topics, header_stamp_ns,
                             read_messages)
from daain_ros.ros.debounce import KOfN
from daain_ros.errors import DaainError, DataSourceError, ImageError
from daain_ros.io.image_codec import decode_compressed_msg, decode_image_msg

SEGMENTATION_TOPIC = "/daain/segmentation"
ANOMALY_TOPIC = "/daain/anomaly"
SCORE_TOPIC = "/daain/score"
FRAMES_FILE = "frames.csv"
OUTPUT_BAG = "bag"
COLUMNS = ("index", "stamp_ns", "time_s", "label", "score", "threshold", "flag", "debounced_flag",
           "latency_ms", "error")
_DECODERS = {IMAGE: decode_image_msg, COMPRESSED_IMAGE: decode_compressed_msg}


def register(sub):
    parser = sub.add_parser("evaluate", help="score a bag's image topic offline; CSV, report, plot and an "
                                             "output bag with the detector's topics")
    parser.add_argument("bag", type=Path, metavar="BAG", help="rosbag2 directory, .mcap or .db3")
    parser.add_argument("--topic", default=None,
                        help="image topic (Image or CompressedImage; default: the labels' topic)")
    parser.add_argument("--detector", required=True, help="detector directory")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint the detector was fitted for")
    parser.add_argument("--out", type=Path, required=True, help="output directory (OUT/bag must not exist)")
    parser.add_argument("--labels", type=Path, default=None,
                        help=f"anomaly labels (default: BAG/{LABELS_FILE} when present)")
    parser.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    parser.add_argument("--debounce-k", type=int, default=1, help="flag while k of the last n frames are "
                                                                  "anomalous (default 1)")
    parser.add_argument("--debounce-n", type=int, default=1, help="debounce window n (default 1)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per forward pass (default 8)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.set_defaults(run=run)


@dataclass
class BagFrame:
    """One message of the image topic: its decoded image, or why it could not be read."""

    index: int
    log_ns: int
    stamp_ns: int
    msg: object = None
    image: np.ndarray = None
    error: str = None


def _stamp_ns(msg, log_ns):
    header = getattr(msg, "header", None)
    return log_ns if header is None else header_stamp_ns(header)


def bag_frames(path, topic):
    """Streams :class:`BagFrame` of ``topic``; a message that cannot be decoded carries its error."""
    for index, log_ns, msg in read_messages(path, topic, IMAGE_TYPES):
        if isinstance(msg, ImageError):
            yield BagFrame(index, log_ns, log_ns, error=" ".join(str(msg).split()))
            continue
        stamp_ns = _stamp_ns(msg, log_ns)
        try:
            yield BagFrame(index, log_ns, stamp_ns, msg, image=_DECODERS[msg.__msgtype__](msg))
        except ImageError as exc:
            yield BagFrame(index, log_ns, stamp_ns, msg, error=f"{topic} frame {index}: "
                                                               f"{' '.join(str(exc).split())}")


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


def _choose_topic(bag, topic, labels):
    topics = bag_topics(bag)
    topic = topic or (labels.topic if labels is not None else None)
    if topic is None:
        images = sorted(t for t, (m, _) in topics.items() if m in IMAGE_TYPES)
        if len(images) != 1:
            raise DataSourceError(f"{bag}: say which image topic to evaluate (--topic); image topics: "
                                  f"{', '.join(images) or 'none'}")
        topic = images[0]
    if topic not in topics:
        present = ", ".join(f"{t} ({m}, {n} messages)" for t, (m, n) in sorted(topics.items())) or "none"
        raise DataSourceError(f"{bag}: no topic {topic}; the bag has {present}")
    msgtype, count = topics[topic]
    if msgtype not in IMAGE_TYPES or count == 0:
        raise DataSourceError(f"{bag}: topic {topic} carries {count} {msgtype} messages; expected "
                              f"{' or '.join(IMAGE_TYPES)} frames")
    return topic, count


def _labels(args):
    if args.labels is not None:
        return read_labels(args.labels), args.labels
    default = args.bag / LABELS_FILE
    return (read_labels(default), default) if default.is_file() else (None, None)


class Evaluation:
    """Runs the pipeline over a bag, writing frames.csv and the output bag as it goes."""

    def __init__(self, pipeline, topic, labels, debounce, out_bag, rows, records):
        self.pipeline, self.topic, self.labels = pipeline, topic, labels
        self.debounce, self.out_bag, self.rows, self.records = debounce, out_bag, rows, records
        self.first_ns = None

    def run(self, frames, batch_size, progress):
        for batch in batches(frames, batch_size):
            images = [f.image for f in batch if f.error is None]
            results, latency = iter(()), math.nan
            if images:
                start = time.perf_counter()
                results = iter(self.pipeline.process(images))
                latency = (time.perf_counter() - start) / len(images)
            for frame in batch:
                self._record(frame, None if frame.error else next(results), latency)
            progress.update(len(batch))

    def _record(self, frame, result, latency):
        self.first_ns = frame.stamp_ns if self.first_ns is None else self.first_ns
        kind = self.labels.kind_at(frame.stamp_ns) if self.labels is not None else None
        flag = True if result is None else result.anomalous
        debounced = self.debounce.update(flag)
        score = math.nan if result is None else result.score
        self.records.add(frame.index, frame.stamp_ns, kind, score, flag, debounced,
                         math.nan if result is None else latency, frame.error)
        scored = result is not None
        self.rows.writerow([frame.index, frame.stamp_ns, f"{(frame.stamp_ns - self.first_ns) / 1e9:.6f}",
                            kind or "", f"{score:.6g}" if scored else "", f"{self.pipeline.threshold:.6g}",
                            int(flag), int(debounced), f"{latency * 1e3:.2f}" if scored else "",
                            frame.error or ""])
        self._write_outputs(frame, result, debounced)

    def _write_outputs(self, frame, result, debounced):
        if frame.msg is not None:
            self.out_bag.add_message(self.topic, frame.log_ns, frame.msg)
        if result is not None:
            frame_id = frame.msg.header.frame_id
            self.out_bag.add_image_labels(SEGMENTATION_TOPIC, frame.stamp_ns, result.labels, frame_id)
            self.out_bag.add_float32(SCORE_TOPIC, frame.stamp_ns, result.score)
        self.out_bag.add_bool(ANOMALY_TOPIC, frame.stamp_ns, debounced)


def run(args):
    from daain_ros.evaluation import bag_report  # matplotlib and torch load only when a bag is evaluated
    from daain_ros.pipeline import Pipeline

    if args.batch_size < 1:
        raise DaainError(f"--batch-size {args.batch_size}: expected a positive number of frames")
    debounce = KOfN(args.debounce_k, args.debounce_n)
    labels, labels_path = _labels(args)
    topic, count = _choose_topic(args.bag, args.topic, labels)
    if (args.out / OUTPUT_BAG).exists():
        raise DataSourceError(f"{args.out / OUTPUT_BAG} exists already: evaluate into a new --out directory")
    pipeline = Pipeline.load(args.model, args.detector, args.device, args.threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / FRAMES_FILE
    started = time.perf_counter()
    try:
        with OutputBag(args.out / OUTPUT_BAG) as out_bag, open(csv_path, "w", newline="") as table:
            rows = csv.writer(table)
            rows.writerow(COLUMNS)
            evaluation = Evaluation(pipeline, topic, labels, debounce, out_bag, rows, bag_report.FrameRecords())
            with tqdm(total=count, desc=f"evaluate {topic}", unit="frame") as progress:
                evaluation.run(bag_frames(args.bag, topic), args.batch_size, progress)
    except BaseException:
        csv_path.unlink(missing_ok=True)  # a half table would read as a finished evaluation
        raise
    wall_s = time.perf_counter() - started
    setup = dict(bag=str(args.bag), topic=topic, model=str(args.model), detector=str(args.detector),
                 labels=None if labels_path is None else str(labels_path), device=str(pipeline.device),
                 batch_size=args.batch_size, threshold=pipeline.threshold,
                 debounce=dict(k=debounce.k, n=debounce.n), wall_s=round(wall_s, 3))
    summary = bag_report.write(args.out, evaluation.records, labels, setup)
    print(json.dumps({key: summary[key] for key in ("frames", "unreadable", "flagged_share", "out")}))
    if summary["frames"] == summary["unreadable"]:
        raise DataSourceError(f"{args.bag}: none of the {summary['frames']} frames of {topic} could be read; "
                              f"first: {evaluation.records.errors[0][2]}")
