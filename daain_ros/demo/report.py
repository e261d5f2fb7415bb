# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""What ``daain demo`` concludes from the node's recorded outputs: timeline, report, score plot, overlay.

The node's verdict for a frame is the first ``/diagnostics`` status whose header carries that frame's
stamp (health checks carry the node's clock instead, so STALE reports never count as frames). Each
frame of the drive is judged (the node judged it), flagged (its verdict raised ``/daain/anomaly``) or
not judged (the node was busy and judged a newer frame). A segment counts as flagged when the node
flagged at least one of its frames; the false-positive rate is the share of judged clean frames flagged.
"""

import json

import cv2
import numpy as np

from daain_ros.errors import DataSourceError
from daain_ros.evaluation.bag_report import FrameRecords, kind_metrics, plot
from daain_ros.evaluation.metrics import ratio
from daain_ros.io.image_codec import decode_image_msg
from daain_ros.io.labels import read_labels
from daain_ros.io.rosbag import header_stamp_ns, read_messages
from daain_ros.io.sources import stamp_at
from daain_ros.provenance import markdown_lines as provenance_lines
from daain_ros.ros.health import STALE, Verdict
from daain_ros.segmentation.cityscapes import overlay

REPORT, SUMMARY, SCORES, OVERLAY = "report.md", "summary.json", "scores.png", "overlay.png"
PANEL = (320, 160)  # width, height of each overlay panel: the PNG stays small enough for docs/


def node_verdicts(recorded):
    """The node's first verdict on each frame, ``{frame stamp ns: (Verdict, latency ms)}``.

    Read back from the recorded ``/diagnostics`` (``health.key_values`` wrote them).
    """
    verdicts = {}
    for _, _, msg in read_messages(recorded, "/diagnostics"):
        stamp = header_stamp_ns(msg.header)
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            sec, _, nsec = values.get("frame stamp", "none").partition(".")
            if status.level == STALE or not nsec or int(sec) * 10**9 + int(nsec) != stamp:
                continue
            latency = values.get("latency ms", "nan")
            verdict = Verdict(values["anomaly"] == "true", status.level, status.message, float(values["score"]))
            verdicts.setdefault(stamp, (verdict, float(latency) if latency != "None" else float("nan")))
    return verdicts


def drive_parts(labels):
    """The drive as consecutive (kind or None, first frame, end frame) stretches, clean ones included."""
    parts, position = [], labels.first_frame
    for segment in labels.segments:
        if segment.start > position:
            parts.append((None, position, segment.start))
        parts.append((segment.kind, segment.start, segment.end))
        position = segment.end
    end = labels.first_frame + labels.frame_count
    return parts + ([(None, position, end)] if end > position else [])


def _part(kind, start, end, labels, verdicts):
    stamps = [labels.epoch_ns + stamp_at(i, labels.rate_hz) for i in range(start, end)]
    judged = [(i, *verdicts[s]) for i, s in zip(range(start, end), stamps) if s in verdicts]
    flagged = [i for i, verdict, _ in judged if verdict.anomalous]
    latencies = [ms for _, _, ms in judged if np.isfinite(ms)]
    first = flagged[0] if flagged else None
    return dict(kind=kind or "clean", start=start, end=end, frames=end - start, judged=len(judged),
                flagged=len(flagged), flagged_frames=flagged,
                start_s=(start - labels.first_frame) / labels.rate_hz,
                end_s=(end - labels.first_frame) / labels.rate_hz,
                first_flag_frame=first, first_flag_s=None if first is None else (first - start) / labels.rate_hz,
                latency_ms_median=float(np.median(latencies)) if latencies else None)


def summarize_parts(labels, verdicts):
    """Per part of the drive (:func:`drive_parts`) its counts, and the demo's verdict numbers."""
    parts = [_part(*part, labels, verdicts) for part in drive_parts(labels)]
    clean = [p for p in parts if p["kind"] == "clean"]
    segments = [p for p in parts if p["kind"] != "clean"]
    clean_judged, clean_flagged = sum(p["judged"] for p in clean), sum(p["flagged"] for p in clean)
    return parts, dict(segments=len(segments), segments_flagged=sum(p["flagged"] > 0 for p in segments),
                       clean_judged=clean_judged, clean_flagged=clean_flagged,
                       false_positive_rate=ratio(clean_flagged, clean_judged))


def analyse(out, drive, recorded, setup):
    """Every number of the demo; writes summary.json, report.md, scores.png and overlay.png into ``out``."""
    labels = read_labels(drive)
    verdicts = node_verdicts(recorded)
    records = _records(labels, verdicts)
    if not records.index:
        raise DataSourceError(f"{recorded}: detector_node judged none of the drive's {labels.frame_count} frames")
    parts, counts = summarize_parts(labels, verdicts)
    kinds = np.asarray([k or "" for k in records.kind], dtype=object)
    summary = dict(setup, frames=labels.frame_count, rate_hz_stamps=labels.rate_hz, judged=len(records.index),
                   threshold=_threshold(recorded), parts=parts, **counts,
                   metrics=kind_metrics(kinds, np.asarray(records.score, float)),
                   report=str(out / REPORT), scores_png=str(out / SCORES), overlay_png=str(out / OVERLAY))
    plot(out / SCORES, records, labels, summary["threshold"])
    write_overlay(out / OVERLAY, drive, recorded, labels, parts, verdicts)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    (out / REPORT).write_text(markdown(summary))
    return summary


def _threshold(recorded):
    for _, _, msg in read_messages(recorded, "/diagnostics"):
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if values.get("threshold", "nan") not in ("nan", "None"):
                return float(values["threshold"])
    return float("nan")


def _records(labels, verdicts):
    records = FrameRecords()
    for index in range(labels.first_frame, labels.first_frame + labels.frame_count):
        stamp = labels.epoch_ns + stamp_at(index, labels.rate_hz)
        if stamp in verdicts:
            v, latency_ms = verdicts[stamp]
            records.add(index, stamp, labels.kind_at(stamp), v.score, v.anomalous, v.anomalous, latency_ms / 1e3)
    return records


def _frame_images(drive, recorded, labels, stamps):
    """Input images (from the drive bag) and node segmentations (recorded) of the frames stamped ``stamps``."""
    images = {}
    for _, _, msg in read_messages(drive, labels.topic):
        if header_stamp_ns(msg.header) in stamps:
            images[header_stamp_ns(msg.header)] = decode_image_msg(msg)
    segmentation = {}
    for _, _, msg in read_messages(recorded, "/daain/segmentation"):
        if header_stamp_ns(msg.header) in stamps:
            segmentation[header_stamp_ns(msg.header)] = decode_image_msg(msg)[..., 0]
    return images, segmentation


def _middle_judged(part, labels, verdicts):
    """The judged frame nearest the middle of a part, or None."""
    middle = (part["start"] + part["end"]) // 2
    for index in sorted(range(part["start"], part["end"]), key=lambda i: abs(i - middle)):
        stamp = labels.epoch_ns + stamp_at(index, labels.rate_hz)
        if stamp in verdicts:
            return index, stamp
    return None


def write_overlay(path, drive, recorded, labels, parts, verdicts):
    """Rows of (camera frame | the node's segmentation over it): a clean frame and one per segment."""
    clean = [p for p in parts if p["kind"] == "clean"]
    chosen = clean[:1] + [p for p in parts if p["kind"] != "clean"]
    picks = [(p["kind"], *pick) for p in chosen if (pick := _middle_judged(p, labels, verdicts))]
    images, segmentation = _frame_images(drive, recorded, labels, {stamp for _, _, stamp in picks})
    rows = []
    for kind, index, stamp in picks:
        if stamp not in images or stamp not in segmentation:
            continue
        ids = segmentation[stamp]
        frame = cv2.resize(images[stamp], (ids.shape[1], ids.shape[0]), interpolation=cv2.INTER_AREA)
        blended = overlay(frame, ids)[..., ::-1]
        v, _ = verdicts[stamp]
        caption = f"{kind} (frame {index}): score {v.score:.3g}, {'FLAGGED' if v.anomalous else 'not flagged'}"
        rows.append(np.hstack([_panel(frame, caption), _panel(blended, "detector_node segmentation")]))
    if rows:
        write_small_png(path, np.vstack(rows))


def write_small_png(path, image_bgr, colours=128):
    """A palette PNG (Pillow, which matplotlib needs anyway): a third of the size of an RGB one."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image_bgr[..., ::-1])).quantize(colours, dither=Image.Dither.NONE).save(
        path, optimize=True)


def _panel(image, caption):
    panel = cv2.resize(image, PANEL, interpolation=cv2.INTER_AREA)
    cv2.rectangle(panel, (0, 0), (PANEL[0], 16), (0, 0, 0), -1)
    cv2.putText(panel, caption, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def _fmt(value, fmt, missing="-"):
    return missing if value is None else format(value, fmt)


def _part_line(p):
    span = f"{p['start_s']:6.2f}-{p['end_s']:6.2f} s"
    what = (f"{p['kind']:<13} frames {p['start']:>4}-{p['end'] - 1:<4} judged {p['judged']:>3}, "
            f"flagged {p['flagged']:>3}")
    if p["kind"] == "clean":
        extra = f" at frames {', '.join(map(str, p['flagged_frames'][:8]))}" if p["flagged"] else ""
        return f"  {span}  {what}{extra}"
    when = ("NOT FLAGGED" if p["first_flag_frame"] is None else
            f"first flag {p['first_flag_s']:.2f} s into it (frame {p['first_flag_frame']}), node latency "
            f"{_fmt(p['latency_ms_median'], '.0f')} ms")
    return f"  {span}  {what}  {when}"


def timeline(summary):
    """The lines ``daain demo`` prints, ending with ``demo: K/N injected segments flagged, ...``."""
    rate = f"{summary['rate_hz']:.1f}"
    lines = [f"demo: timeline (drive time; stamps at {summary['rate_hz_stamps']:g} Hz, played at {rate} Hz); the "
             f"node judged {summary['judged']} of {summary['frames']} frames, threshold {summary['threshold']:.4g}"]
    lines += [_part_line(p) for p in summary["parts"]]
    lines.append(f"demo: report {summary['report']} (score plot {summary['scores_png']}, segmentation overlay "
                 f"{summary['overlay_png']})")
    fpr = summary["false_positive_rate"]
    lines.append(f"demo: {summary['segments_flagged']}/{summary['segments']} injected segments flagged, "
                 f"false-positive rate {_fmt(fpr, '.2f', 'n/a')}")
    return lines


def markdown(summary):
    """report.md: the title, where and how the demo ran (its provenance) and :func:`section`."""
    return "\n".join(["# daain demo", "", *provenance_lines(summary.get("provenance")), "", section(summary)])


def section(summary, level=2, figures=""):
    """The demo as markdown, from its ``summary.json``.

    The setup, the timeline table, per-kind separation and the two images; ``report.md`` and ``daain report`` both
    use it.

    :param level: heading level of its sub-sections.
    :param figures: path prefix of the PNGs (relative to the markdown file); None leaves them out.
    """
    lines = [f"Drive `{summary['data']}`: {summary['frames']} "
             f"frames, played at {summary['rate_hz']:.1f} Hz into `detector_node` (model `{summary['model']}`, "
             f"detector `{summary['detector']}`, threshold {summary['threshold']:.4g}); its outputs recorded "
             f"with `daain bag record`. The node judged {summary['judged']} frames.", "",
             "| drive time (s) | part | frames | judged | flagged | first flag | node latency (median) |",
             "|---|---|---|---|---|---|---|"]
    for p in summary["parts"]:
        first = "—" if p["first_flag_s"] is None else f"+{p['first_flag_s']:.2f} s (frame {p['first_flag_frame']})"
        lines.append(f"| {p['start_s']:.2f}-{p['end_s']:.2f} | {p['kind']} | {p['start']}-{p['end'] - 1} | "
                     f"{p['judged']} | {p['flagged']} | {first if p['kind'] != 'clean' else '—'} | "
                     f"{_fmt(p['latency_ms_median'], '.0f', '—')} ms |")
    fpr = summary["false_positive_rate"]
    lines += ["", f"**{summary['segments_flagged']}/{summary['segments']} injected segments flagged, "
                  f"false-positive rate {_fmt(fpr, '.2f', 'n/a')}** ({summary['clean_flagged']} of "
                  f"{summary['clean_judged']} judged clean frames flagged).", "",
              "Latency: from the frame's arrival at the node to its verdict. First flag: drive time from the "
              "segment's first frame to the first frame in it that the node flagged.", "",
              f"{'#' * level} Separation per kind (the node's scores; clean frames against that kind's)", "",
              "| kind | clean | anomalous | AUROC |", "|---|---|---|---|"]
    for kind, m in summary["metrics"].items():
        lines.append(f"| {kind} | {m['clean']} | {m['anomalous']} | {_fmt(m['auroc'], '.3f', '—')} |")
    lines.append("")
    if figures is not None:
        lines += [f"![score against time]({figures}{SCORES})", "", f"![segmentation overlay]({figures}{OVERLAY})", ""]
    return "\n".join(lines)
