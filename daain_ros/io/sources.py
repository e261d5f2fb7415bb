# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Where frames for fitting and scoring come from: image files, folders, videos, rosbags, Cityscapes.

:func:`open_source` turns a spec string into a re-iterable, streaming source of :class:`Frame` (BGR
uint8), optionally cut to a frame range, so that one drive can be split into a fit part (``0:150``) and
a held-out part (``150:221``). Specs:

- ``IMAGE`` (a single image file) or ``DIR`` (its image files in natural order: frame2 before frame10);
- ``VIDEO`` (.mp4, .avi, .mkv, .mov, ...; stamps from its frame rate);
- ``BAG[:/TOPIC]`` (a rosbag2 directory, .mcap or .db3; Image or CompressedImage; stamps from the
  headers; the topic may be left out when the bag has one Image topic, or else one CompressedImage topic);
- ``cityscapes:ROOT[:SPLIT]`` (``ROOT/leftImg8bit/SPLIT/<city>/*.png``; SPLIT defaults to val);
- ``synthetic:SEED[:N[:LEN]]`` (N generated frames, default 200, at 512x256: drives of LEN frames, default
  N, down the streets of ``daain_ros.io.synthetic.drive`` seeds SEED, SEED + 1, ...; stamps at its FPS).

Still images get nominal stamps at :data:`STILL_RATE` Hz, the rate ``daain bag from-images`` uses.
"""

import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from daain_ros.errors import DataSourceError, ImageError
from daain_ros.io import rosbag
from daain_ros.io.images import IMAGE_SUFFIXES, read_bgr

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
BAG_SUFFIXES = (".mcap", ".db3")
STILL_RATE = 10.0
CITYSCAPES_PREFIX = "cityscapes:"
SYNTHETIC_PREFIX = "synthetic:"
SYNTHETIC_FRAMES = 200


@dataclass(frozen=True)
class Frame:
    """One frame: where it came from, its index in the whole source, its stamp and its BGR pixels."""

    source: str
    index: int
    stamp_ns: int
    image: np.ndarray


def stamp_at(index, rate):
    """Nanoseconds of frame ``index`` at ``rate`` Hz (deterministic, rounded)."""
    return round(index * 1e9 / rate)


def parse_frames(text):
    """``"A:B"`` -> ``slice(A, B)``: half-open, as in Python, A or B optional, both non-negative."""
    if text is None:
        return None
    start, sep, stop = text.partition(":")
    try:
        bounds = [int(b) if b.strip() else None for b in (start, stop)]
    except ValueError:
        bounds = None
    if not sep or bounds is None:
        raise DataSourceError(f"frame range {text!r} is not A:B (e.g. 0:150, 150:, :150)")
    return check_frames(slice(*bounds))


def check_frames(frames):
    """Validates a frame range: non-negative bounds, step 1 and at least one frame."""
    if frames is None:
        return None
    start, stop = frames.start, frames.stop
    if frames.step not in (None, 1) or any(b is not None and b < 0 for b in (start, stop)):
        raise DataSourceError(f"frame range {_show(frames)} must have non-negative bounds and step 1")
    if start is not None and stop is not None and stop <= start:
        raise DataSourceError(f"frame range {_show(frames)} selects no frames")
    return frames


def _show(frames):
    return f"{'' if frames.start is None else frames.start}:{'' if frames.stop is None else frames.stop}"


class FrameSource:
    """A re-iterable stream of frames; fails with the source's name if the range selects none.

    :param total: the number of frames the range selects, for progress bars (approximate for videos,
        whose containers may misstate it; None if unknown).
    :param rate: the frame rate the stamps assume, or None when they come from the data (bags).
    """

    def __init__(self, name, frames_fn, total=None, rate=None, frames=None):
        self.name, self._frames_fn, self.total, self.rate = name, frames_fn, total, rate
        self.frames = frames or slice(None)
        if total == 0:
            raise DataSourceError(f"{name}: frames {_show(self.frames)} select no frames")

    def __iter__(self):
        count = 0
        for frame in self._frames_fn(self.frames):
            count += 1
            yield frame
        if count == 0:
            raise DataSourceError(f"{self.name}: frames {_show(self.frames)} select no frames")


def _selected(count, frames):
    return len(range(count)[frames or slice(None)])


def _natural_key(path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _stills(name, paths, frames):
    """A source of image files, read one at a time."""

    def generate(frames):
        for index in range(len(paths))[frames]:
            try:
                image = read_bgr(paths[index])
            except ImageError as exc:
                raise ImageError(f"{name} frame {index}: {exc}") from exc
            yield Frame(str(paths[index]), index, stamp_at(index, STILL_RATE), image)

    return FrameSource(name, generate, _selected(len(paths), frames), STILL_RATE, frames)


def image_folder(path, frames=None):
    if not Path(path).is_dir():
        raise DataSourceError(f"{path}: no such folder")
    paths = sorted((p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not paths:
        raise DataSourceError(f"{path}: a folder with no image files ({', '.join(IMAGE_SUFFIXES)})")
    return _stills(str(path), paths, frames)


def cityscapes(root, split="val", frames=None):
    """``ROOT/leftImg8bit/SPLIT/<city>/*.png`` in city, then file order."""
    base = Path(root) / "leftImg8bit"
    if not (base / split).is_dir():
        present = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise DataSourceError(f"{root}: no Cityscapes split {split!r} (leftImg8bit/{split}); "
                              f"splits present: {', '.join(present) or 'none'}")
    paths = sorted((base / split).glob("*/*.png"))
    if not paths:
        raise DataSourceError(f"{base / split}: no <city>/*.png images")
    return _stills(f"{CITYSCAPES_PREFIX}{root}:{split}", paths, frames)


def video(path, frames=None):
    """Frames of a video file, decoded one at a time; stamps from the container's frame rate."""
    path = str(path)
    if not Path(path).is_file():
        raise DataSourceError(f"{path}: no such video file")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DataSourceError(f"{path}: cannot be opened as a video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    rate = fps if fps > 0 else STILL_RATE
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()

    def generate(frames):
        capture = cv2.VideoCapture(path)
        try:
            for _ in range(frames.start or 0):
                if not capture.grab():
                    return
            index = frames.start or 0
            while frames.stop is None or index < frames.stop:
                ok, image = capture.read()
                if not ok:
                    return
                yield Frame(path, index, stamp_at(index, rate), image)
                index += 1
        finally:
            capture.release()

    return FrameSource(path, generate, _selected(count, frames) if count > 0 else None,
                       rate, frames)


def parse_synthetic(spec):
    """``synthetic:SEED[:N[:LEN]]`` -> (SEED, N, LEN); N defaults to :data:`SYNTHETIC_FRAMES`, LEN to N."""
    fields = spec[len(SYNTHETIC_PREFIX):].split(":")
    if 1 <= len(fields) <= 3 and all(field.isdigit() for field in fields):
        numbers = [int(field) for field in fields]
        seed, count = numbers[0], numbers[1] if len(numbers) > 1 else SYNTHETIC_FRAMES
        length = numbers[2] if len(numbers) > 2 else count
        if count >= 1 and length >= 1:
            return seed, count, length
    raise DataSourceError(f"{spec}: expected synthetic:SEED[:N[:LEN]] with SEED >= 0, N >= 1 frames and "
                          "LEN >= 1 frames per drive, e.g. synthetic:7:200")


def synthetic(spec, frames=None):
    """Generated drives (:func:`daain_ros.io.synthetic.drive`), so a fit or a demo needs no footage."""
    from daain_ros.io import synthetic as generator  # loaded only when asked for

    seed, count, length = parse_synthetic(spec)

    def generate(frames):
        stream, current = None, None
        for index in range(count)[frames]:
            number, offset = divmod(index, length)
            if number != current:  # a new street, entered at ``offset`` when a range starts inside it
                current = number
                street = generator.drive(seed + number, min(length, count - number * length))
                stream = islice(street, offset, None)
            image, _ = next(stream)
            yield Frame(spec, index, stamp_at(index, generator.FPS), image)

    return FrameSource(spec, generate, _selected(count, frames), generator.FPS, frames)


def bag(path, topic=None, frames=None):
    """Frames of one Image or CompressedImage topic of a rosbag2, stamped from their headers."""
    topic, count = rosbag.image_topic(path, topic, hint="BAG:/TOPIC")
    name = f"{path}:{topic}"

    def generate(frames):
        for record in rosbag.read_images(path, topic, frames):
            if record.error is not None:
                raise ImageError(f"{path}: {record.error}") from record.error
            yield Frame(name, record.index, record.stamp_ns, record.image)

    return FrameSource(name, generate, _selected(count, frames), None, frames)


def check_every(every):
    """Validates a frame stride (``--every``): a positive integer."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise DataSourceError(f"--every {every!r}: expected a positive number of frames")
    return every


def every_kth(source, every=1):
    """The frames of ``source`` whose position in its range is a multiple of ``every`` (``--every``).

    :raises DataSourceError: when ``every`` is not a positive integer.
    """
    check_every(every)
    start = source.frames.start or 0
    return (frame for frame in source if (frame.index - start) % every == 0)


def _is_bag(path):
    return path.suffix in BAG_SUFFIXES or (path.is_dir() and (path / "metadata.yaml").is_file())


def open_source(spec, frames=None, topic=None):
    """The :class:`FrameSource` a spec names (see the module docstring), cut to ``frames``.

    :param frames: a slice (see :func:`parse_frames`) or None for all frames.
    :param topic: a bag's image topic, overriding one given in the spec.
    """
    frames = check_frames(frames)
    if spec.startswith(SYNTHETIC_PREFIX):
        return synthetic(spec, frames)
    if spec.startswith(CITYSCAPES_PREFIX):
        root, _, split = spec[len(CITYSCAPES_PREFIX):].rpartition(":")
        if not root or "/" in split:
            root, split = spec[len(CITYSCAPES_PREFIX):], "val"
        return cityscapes(root, split, frames)
    path = Path(spec)
    if not path.exists():
        bag_path, sep, bag_topic = spec.partition(":/")
        if sep and _is_bag(Path(bag_path)) and Path(bag_path).exists():
            return bag(Path(bag_path), topic or "/" + bag_topic, frames)
        raise DataSourceError(f"{spec}: no such file or folder")
    if _is_bag(path):
        return bag(path, topic, frames)
    if path.is_dir():
        return image_folder(path, frames)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _stills(str(path), [path], frames)
    if suffix in VIDEO_SUFFIXES:
        return video(path, frames)
    raise DataSourceError(f"{spec}: unknown kind of source {suffix or '(no suffix)'!r}; expected an image "
                          f"({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}), a folder, "
                          f"a rosbag2 ({', '.join(BAG_SUFFIXES)} or a directory), cityscapes:ROOT[:SPLIT] "
                          "or synthetic:SEED[:N[:LEN]]")
