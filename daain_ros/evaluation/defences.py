# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Defences tried against the key-agnostic attacker, measured the same way each time: ``daain defences``.

Five attackers damage the same frames while keeping every leaf layer typical (``key_agnostic``): one that ignores
the defences, one adapted to the JPEG check on its fixed grid, one adapted to the check on a secret grid offset
(expectation over offsets) and two adapted to the secret student (expectation over surrogate students of its own,
trained on the same frames), aimed at its calibrated and at its held-out threshold (both below). Each defence is
then calibrated on clean fit frames that the attackers' statistics did not use (its threshold flags ``clean_rate``
of them; :func:`split_fit`). A threshold for a defence that learns from fit frames comes from frames later than any
it learnt from, as the road ahead is: the projections learn from the first half's frames and are calibrated on the
second half's; the student learns from all statistics frames, and its threshold comes from its twin (the same
recipe from another secret seed), which learns from the first half's statistics frames and is calibrated on the
second half's frames (forward chaining: the twin's calibration frames lie as far ahead of what it learnt as the
road ahead lies beyond the student's). It judges every attacker's frames together with DAAIN: a success is a frame
that is damaged (pixel agreement with the clean prediction <= ``DAMAGED``) and flagged neither by DAAIN at its
calibrated threshold nor by the defence. Each defence is also judged at the threshold that flags ``clean_rate`` of
the held-out clean frames themselves, which favours the defence.

The defences' own keys (the secret offsets, the projections', the student's and its twin's seeds) come from
``seed`` through streams the attackers never read, so a run is deterministic.
"""

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive import DAMAGED, AdaptiveConfig, adaptive_attack
from daain_ros.evaluation.key_agnostic import LayerStatistics, TypicalityCritic
from daain_ros.evaluation.projections import SecretProjections
from daain_ros.evaluation.protocol import Scorer, at_network_size
from daain_ros.evaluation.squeezing import JpegConsistency, SqueezingCritic, all_offsets, random_offsets
from daain_ros.evaluation.students import EPOCHS, StudentCheck, StudentCritic, train_student


@dataclass(frozen=True)
class DefenceConfig:
    """The study's settings; the defaults are the protocol's (docs/evaluation.md)."""

    quality: int = 50  # the JPEG check's quality
    clean_rate: float = 0.05  # the share of calibration frames a defence's threshold flags
    directions: int = 64  # secret projections per leaf layer
    draws: int = 2  # random grid offsets per step of the attacker adapted to the secret offset
    statistics_stride: int = 5  # every Nth fit frame fits the attackers' statistics; the others calibrate
    students: int = 3  # surrogate students of the attacker adapted to the secret student
    student_epochs: int = EPOCHS  # each student's (and the twin's) training epochs
    attack: AdaptiveConfig = AdaptiveConfig()

    def __post_init__(self):
        if not (0 < self.clean_rate < 1 and 1 <= self.quality <= 100 and self.directions >= 1 and self.draws >= 1
                and self.statistics_stride >= 2 and self.students >= 1 and self.student_epochs >= 1):
            raise DaainError(f"clean rate {self.clean_rate}, JPEG quality {self.quality}, {self.directions} "
                             f"directions, {self.draws} draws, statistics stride {self.statistics_stride}, "
                             f"{self.students} students, {self.student_epochs} student epochs: expected a rate in "
                             "(0, 1), a quality of 1-100, at least 1 direction, draw, student and epoch, and a "
                             "stride of at least 2")


@dataclass(frozen=True)
class FitSplit:
    """The fit frames' roles, each list in the frames' order.

    ``statistics`` (every ``stride``th frame) fit the attackers' statistics; the others (``early`` + ``late``)
    calibrate the defences. A defence that learns from fit frames, or its twin, learns from the first half of them
    (``learn``: its statistics frames; ``early``: its other frames) and is calibrated on the second half's
    (``late``). Frames interleaved with those it learnt from are near copies of them and would set a threshold
    that the road ahead does not keep.
    """

    statistics: list
    learn: list
    early: list
    late: list

    @property
    def calibration(self):
        return self.early + self.late


def split_fit(frames, stride):
    """The :class:`FitSplit` of ``frames`` at statistics stride ``stride``."""
    half = len(frames) // 2
    split = FitSplit(frames[::stride], frames[:half:stride],
                     [frame for index, frame in enumerate(frames[:half]) if index % stride],
                     [frame for index, frame in enumerate(frames) if index % stride and index >= half])
    if len(split.statistics) < 2 or len(split.early) < 2 or len(split.late) < 2:
        raise DaainError(f"{len(frames)} fit frames at stride {stride}: expected enough for at least 2 statistics "
                         "frames and 2 calibration frames in each half")
    return split


@dataclass(frozen=True)
class _Defence:
    """One defence: its statistic per frame, on which side it flags, and its values on clean frames.

    ``at_offset(images, offset, labels)``: for a defence keyed by a JPEG grid offset, its statistic at one offset
    (``labels``: the frames' own), so that a frame can be judged at every offset the secret might have drawn.
    """

    name: str
    description: str
    statistic: object  # (images, ESPNet's labels of them) -> values
    flags_above: bool
    calibration: np.ndarray
    held_out: np.ndarray
    at_offset: object = None

    def threshold(self, values, rate):
        return float(np.quantile(values, 1 - rate if self.flags_above else rate))

    def flagged(self, values, threshold):
        values = np.asarray(values)
        return values > threshold if self.flags_above else values < threshold


def defence_study(pipeline, fit_images, held_out_images, target_images, eps, config=DefenceConfig(), seed=0,
                  progress=True):
    """The study's document (without provenance): ``attackers`` and ``defences``, as ``daain defences`` writes it."""
    size, model = pipeline.size, pipeline.model
    fit = at_network_size(fit_images, size)
    held_out = at_network_size(held_out_images, size)
    targets = at_network_size(target_images, size)
    split = split_fit(fit, config.statistics_stride)
    statistics_frames, calibration = split.statistics, split.calibration
    keys = np.random.SeedSequence(seed).spawn(4)  # the defences' secrets: offsets, projections, student, its twin
    scorer = Scorer(pipeline, mc_passes=0)
    clean_daain = scorer.score(held_out)[0]["daain"] > pipeline.threshold
    _, target_labels = scorer.score(targets)

    check = JpegConsistency(model, size, config.quality)
    offsets = np.random.default_rng(keys[0])
    own = {"calibration": check.labels(calibration), "held_out": check.labels(held_out)}
    statistics = LayerStatistics.fit(model, statistics_frames, size)
    projections = SecretProjections.fit(model, statistics, split.early, config.directions, keys[1])
    started = time.perf_counter()
    students = [train_student(model, statistics_frames, size, _torch_seed(key), config.student_epochs)
                for key in [keys[2]] + np.random.SeedSequence([seed, 1]).spawn(config.students)]
    seconds_per_student = (time.perf_counter() - started) / len(students)
    student = StudentCheck(model, students[0], size)
    twin = StudentCheck(model, train_student(model, split.learn, size, _torch_seed(keys[3]), config.student_epochs),
                        size)
    defences = [
        _Defence("jpeg", f"labels kept under JPEG at quality {config.quality}, fixed grid",
                 lambda images, labels: check(images, labels=labels), False,
                 check(calibration, labels=own["calibration"]), check(held_out, labels=own["held_out"])),
        _Defence("jpeg-secret-offset", f"labels kept under JPEG at quality {config.quality}, grid at a secret "
                 "offset per frame", lambda images, labels: check(images, random_offsets(len(images), offsets), labels),
                 False,
                 check(calibration, random_offsets(len(calibration), offsets), own["calibration"]),
                 check(held_out, random_offsets(len(held_out), offsets), own["held_out"]),
                 lambda images, offset, labels: check(images, [offset] * len(images), labels)),
        _Defence("secret-projections", f"largest standardised log mean square of {config.directions} secret "
                 "channel projections per leaf layer", lambda images, _: projections.score(model, images), True,
                 projections.score(model, split.late), projections.score(model, held_out)),
        _Defence("secret-student", "labels shared by a student network distilled from ESPNet from a secret seed "
                 "(threshold from its forward-chained twin)", student, False,
                 twin(split.late, own["calibration"][len(split.early):]),
                 student(held_out, own["held_out"])),
    ]
    thresholds = {d.name: d.threshold(d.calibration, config.clean_rate) for d in defences}
    held_out_thresholds = {d.name: d.threshold(d.held_out, config.clean_rate) for d in defences}

    typical = TypicalityCritic(model, statistics, statistics_frames)
    critics = [("key-agnostic", None, typical),
               ("key-agnostic + jpeg (BPDA)", "jpeg", SqueezingCritic(typical, check, thresholds["jpeg"])),
               ("key-agnostic + jpeg, random offsets (BPDA, EOT)", "jpeg-secret-offset",
                SqueezingCritic(typical, check, thresholds["jpeg-secret-offset"], config.draws, seed)),
               (surrogates := f"key-agnostic + {config.students} surrogate students (EOT)", "secret-student",
                StudentCritic(typical, students[1:], thresholds["secret-student"])),
               # the student's two thresholds lie far apart, so it is also attacked at the one that favours it
               (f"{surrogates}, held-out threshold", "secret-student",
                StudentCritic(typical, students[1:], held_out_thresholds["secret-student"]))]
    attackers = []
    for name, adapted_to, critic in tqdm(critics, desc="attackers", unit="attacker", disable=not progress):
        outcome = adaptive_attack(model, critic, targets, eps, config.attack, seed)
        scores, labels = scorer.score(outcome.images)
        agreement = (labels == target_labels).mean((1, 2))
        attackers.append({
            "attacker": name, "adapted_to": adapted_to, "eps": eps, "frames": len(targets),
            "pixel_agreement": agreement.tolist(), "damaged": (agreement <= DAMAGED).tolist(),
            "daain_scores": scores["daain"].tolist(), "daain_flagged": (scores["daain"] > pipeline.threshold).tolist(),
            "success_rate": float(np.mean((agreement <= DAMAGED) & (scores["daain"] <= pipeline.threshold))),
            "steps": outcome.steps.tolist(), "seconds_per_image": outcome.seconds / len(targets),
            "images": outcome.images, "labels": labels})  # the graph's labels equal the eager model's
    return {"eps": eps, "frames": len(targets), "threshold": pipeline.threshold, "clean_frames": len(held_out),
            "clean_flag_rate": float(clean_daain.mean()), "calibration_frames": len(calibration),
            "late_calibration_frames": len(split.late), "learning_frames": len(statistics_frames),
            "twin_learning_frames": len(split.learn),
            "statistics_frames": len(statistics_frames), "clean_rate": config.clean_rate,
            "seconds_per_student": seconds_per_student,
            "attackers": [{k: v for k, v in a.items() if k not in ("images", "labels")} for a in attackers],
            "defences": [_judged(d, thresholds[d.name], held_out_thresholds[d.name], clean_daain, attackers)
                         for d in defences]}


def _torch_seed(key):
    """A torch seed from a numpy ``SeedSequence``."""
    return int(key.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _judged(defence, threshold, held_out_threshold, clean_daain, attackers):
    clean_flags = defence.flagged(defence.held_out, threshold)
    rows = []
    for attacker in attackers:
        values = np.asarray(defence.statistic(attacker["images"], attacker["labels"]))
        missed = np.asarray(attacker["damaged"]) & ~np.asarray(attacker["daain_flagged"])
        flagged = defence.flagged(values, threshold)
        row = {"attacker": attacker["attacker"], "adapted": attacker["adapted_to"] == defence.name,
               "values": values.tolist(), "flagged": flagged.tolist(), "successes": (missed & ~flagged).tolist(),
               "success_rate": float(np.mean(missed & ~flagged)),
               "success_rate_held_out_threshold": float(np.mean(missed & ~defence.flagged(values, held_out_threshold)))}
        if defence.at_offset:
            labels = attacker["labels"]
            passed = [~defence.flagged(defence.at_offset(attacker["images"], offset, labels), threshold)
                      for offset in all_offsets()]
            row["success_share_over_offsets"] = (missed * np.mean(passed, 0)).tolist()
        rows.append(row)
    return {"defence": defence.name, "description": defence.description,
            "flags": "above" if defence.flags_above else "below", "threshold": threshold,
            "held_out_threshold": held_out_threshold, "clean_values": defence.held_out.tolist(),
            "clean_flag_rate": float(clean_flags.mean()),
            "clean_flag_rate_with_daain": float((clean_flags | clean_daain).mean()), "attackers": rows}
