# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Fitting a DAAIN detector for a segmentation model on clean frames: key, activations, training, threshold."""

import secrets
from dataclasses import asdict, dataclass, field

import torch

from daain_ros.detector.augment import augment
from daain_ros.detector.calibration import calibrate, cross_fitted_scores
from daain_ros.detector.daain import extract_activations
from daain_ros.detector.flow import FlowConfig
from daain_ros.detector.monitor import ActivationMonitor, probe_layers
from daain_ros.detector.sampling_key import SamplingKey
from daain_ros.detector.training import train_detector
from daain_ros.errors import DaainError
from daain_ros.segmentation.network_size import DEFAULT_SIZE, check_network_size


@dataclass(frozen=True)
class FitConfig:
    """How a detector is fitted; everything but ``key_seed`` is recorded in its metadata."""

    size: tuple = DEFAULT_SIZE
    layers: tuple = None
    radius: float = None
    target_dims: int = 2000
    key_seed: int = None
    augment_copies: int = 3
    valid_fraction: float = 0.2
    head: str = "cauchy"
    target_fpr: float = 0.01
    calibration_folds: int = 5
    anomaly_kinds: tuple = ("noise", "color-jitter", "fgsm")  # what the supervised head learns from
    batch_size: int = 8
    seed: int = 0
    flow: FlowConfig = field(default_factory=FlowConfig)

    def __post_init__(self):
        """Settings no fit can run with raise ``DaainError`` here, before any frame is read."""
        checks = (
            ("target_dims", self.target_dims, self.radius is not None or self.target_dims >= 1, "at least 1"),
            ("radius", self.radius, self.radius is None or self.radius > 0, "a positive distance in pixels"),
            ("augment_copies", self.augment_copies, self.augment_copies >= 0, "0 or more"),
            ("valid_fraction", self.valid_fraction, 0 < self.valid_fraction < 1, "a fraction in (0, 1)"),
            ("target_fpr", self.target_fpr, 0 <= self.target_fpr < 1, "a false-positive rate in [0, 1)"),
            ("calibration_folds", self.calibration_folds, self.calibration_folds >= 0, "0 or more"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("flow blocks", self.flow.blocks, self.flow.blocks >= 1, "at least 1"),
            ("flow hidden", self.flow.hidden, self.flow.hidden >= 1, "at least 1"),
            ("flow epochs", self.flow.epochs, self.flow.epochs >= 1, "at least 1"),
        )
        for name, value, valid, expected in checks:
            if not valid:
                raise DaainError(f"fit setting {name} {value}: expected {expected}")

    def public_dict(self):
        """The settings without the secret seed."""
        settings = asdict(self)
        settings.pop("key_seed")
        return settings


def split_count(frames, config):
    """How many of ``frames`` fit frames train; the last ones (``config.valid_fraction``) validate.

    A temporal split, so that calibration sees the drive's drift. Calibration cuts all the fit frames into
    ``config.calibration_folds`` stretches, so there must be at least one frame per fold.
    """
    n_valid = max(1, int(round(frames * config.valid_fraction)))
    if frames - n_valid < 2:
        raise DaainError(f"{frames} fit frames: expected at least {n_valid + 2}")
    if config.calibration_folds >= 2 and frames < config.calibration_folds:
        raise DaainError(f"{frames} fit frames for {config.calibration_folds} calibration folds: expected at least "
                         f"{config.calibration_folds} (or 0 folds, to calibrate on the validation frames alone)")
    return frames - n_valid


def _split(frames, config):
    n_train = split_count(len(frames), config)
    return frames[:n_train], frames[n_train:]


def fit_key(model, config):
    """Draw the sampling key of a new fit.

    ``model``'s layers are probed at ``config.size``; the indices come from ``config.key_seed`` (from the OS
    when None).
    """
    size = check_network_size(*config.size)
    key_seed = config.key_seed if config.key_seed is not None else secrets.randbits(63)
    layers = probe_layers(model, size, config.layers, model.device)
    return SamplingKey.generate(layers, size, key_seed, config.radius, config.target_dims)


def generated_anomalies(monitor, model, frames_bgr, config, anomalies, progress=True):
    """Activations of each frame under each of ``config.anomaly_kinds`` (kind by kind), for the supervised head.

    :param anomalies: ``anomalies(kind, frames_bgr, model=, size=, seed=)`` -> perturbed frames, e.g.
        ``daain_ros.evaluation.anomalies.perturb``; the core makes no anomalies itself.
    """
    if anomalies is None:
        raise DaainError("the supervised head learns from generated anomalies: expected an anomaly generator "
                         "(e.g. daain_ros.evaluation.anomalies.perturb), got none")
    size = check_network_size(*config.size)
    acts = [extract_activations(monitor, anomalies(kind, frames_bgr, model=model, size=size, seed=config.seed),
                                size, config.batch_size, progress, f"{kind} activations")[0]
            for kind in config.anomaly_kinds]
    return torch.cat(acts)


def fit_detector(model, frames_bgr, config=FitConfig(), progress=True, anomalies=None):
    """Fits a detector for ``model`` on clean frames: key, activations, scaling, flow, head, threshold.

    Jittered copies widen what the flow trains on and what picks its best epoch (the activations of each
    frame and its copies, :func:`daain_ros.detector.augment.augment`); the rest is
    :func:`fit_on_activations`. ``anomalies`` generates the supervised head's training anomalies
    (:func:`generated_anomalies`).
    """
    size = check_network_size(*config.size)
    frames_bgr = list(frames_bgr)
    train_frames, valid_frames = _split(frames_bgr, config)
    key = fit_key(model, config)
    monitor = ActivationMonitor(model, key)
    train, _ = extract_activations(monitor, augment(train_frames, config.augment_copies, config.seed),
                                   size, config.batch_size, progress, "fit activations")
    valid, _ = extract_activations(monitor, augment(valid_frames, config.augment_copies, config.seed + 1),
                                   size, config.batch_size, progress, "validation activations")
    anomalous = (generated_anomalies(monitor, model, train_frames, config, anomalies, progress)
                 if config.head == "supervised" else None)
    return fit_on_activations(key, config, train, valid, progress, anomalous)


def fit_on_activations(key, config, train, valid, progress=True, anomalous=None):
    """Trains and calibrates a detector on activations gathered elsewhere (in this process, or in parallel).

    ``train`` and ``valid`` hold, frame after frame, the activations of each fit frame followed by those of
    its ``config.augment_copies`` jittered copies: what :func:`fit_detector` extracts from
    ``augment(train_frames, copies, config.seed)`` and ``augment(valid_frames, copies, config.seed + 1)``,
    the last frames validating (:func:`split_count`). The same activations in the same order give the same
    detector.

    The threshold is calibrated on the fit frames as the camera gave them, each scored out of fold
    (:func:`cross_fitted_scores`): a drive drifts, and a threshold from the last fifth of the fit frames
    alone (30 of the protocol's 150) was the highest of 30 scores, set by whichever frame was most unusual,
    and left 10-60 % of later clean frames above it depending on the key. Jittered copies are not
    calibrated on: measured on the detector protocol, a few score up to 10**4 (clean frames: median 0.5),
    and a threshold over them flagged 12 % of sigma-0.03 noisy frames against about 40 % from plain frames.
    With ``calibration_folds`` < 2 the threshold comes from the validation frames alone.
    """
    rows = config.augment_copies + 1
    if len(train) % rows or len(valid) % rows or not len(valid) or len(train) < 2 * rows:
        raise DaainError(f"{len(train)} training and {len(valid)} validation activations: expected at least 2 "
                         f"and 1 frames of {rows} rows each (a frame and its {config.augment_copies} copies)")
    n_train, n_valid = len(train) // rows, len(valid) // rows
    detector, summary = train_detector(key, config, config.flow, train, valid, progress, anomalous)
    if config.calibration_folds >= 2:
        scores = cross_fitted_scores(key, config, torch.cat([train, valid]), n_train + n_valid,
                                     summary["best_epoch"] + 1, progress, anomalous)
        method = f"out-of-fold scores of the {n_train + n_valid} fit frames, {config.calibration_folds} folds"
    else:
        with torch.no_grad():
            scores = detector(valid[::rows]).double().cpu().numpy()
        method = f"scores of the {n_valid} validation frames"
    threshold, calibration = calibrate(scores, config.target_fpr)
    detector.threshold.fill_(threshold)
    detector.metadata.update({
        "fit": config.public_dict(),
        "training": {**summary, "train_frames": n_train, "valid_frames": n_valid,
                     "train_samples": len(train), "valid_samples": len(valid)},
        "calibration": {**calibration, "method": method},
        "coverage": key.coverage(),
    })
    return detector
