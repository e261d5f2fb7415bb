"""The DAAIN detector ("DAAIN: Detection of Anomalous and Adversarial Input using Normalizing Flows",
arXiv 2105.14638): standardisation, flow and head over a sampling key's activations, with a threshold
calibrated on held-out clean frames.
"""

import secrets
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from daain_ros.detector.augment import augment
from daain_ros.errors import DaainError
from daain_ros.detector.flow import FlowConfig, build_flow, fit_flow, negative_log_likelihood
from daain_ros.detector.heads import ScoreHead
from daain_ros.detector.monitor import ActivationMonitor, probe_layers
from daain_ros.segmentation.preprocess import DEFAULT_SIZE, check_network_size, preprocess
from daain_ros.detector.sampling_key import SamplingKey
from daain_ros.detector.standardizer import Standardizer


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

    def public_dict(self):
        """The settings without the secret seed."""
        settings = asdict(self)
        settings.pop("key_seed")
        return settings


class DaainDetector(nn.Module):
    """Scores sampled activations: standardisation, then flow NLL and latent z, then the head."""

    def __init__(self, key, head_kind, flow_config, threshold=float("inf"), metadata=None):
        super().__init__()
        self.key = key
        self.standardizer = Standardizer(key.dims)
        self.flow = build_flow(key.dims, flow_config)
        self.flow_config = flow_config
        self.head = ScoreHead(head_kind, key.dims)
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.metadata = dict(metadata or {})

    def forward(self, activations):
        """N x K activations -> N scores (higher = more anomalous)."""
        nll, z = negative_log_likelihood(self.flow, self.standardizer(activations))
        return self.head(nll, z)


def extract_activations(monitor, images_bgr, size, batch_size=8, progress=True, desc="activations"):
    """Runs the monitored model over images in batches: (N x K activations, N x H x W train ids)."""
    device = next(monitor.model.net.parameters()).device
    acts, labels = [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images_bgr), batch_size), desc=desc, unit="batch",
                          disable=not progress, leave=False):
            logits, sampled = monitor(preprocess(images_bgr[start:start + batch_size], size, device))
            acts.append(sampled.float())
            labels.append(logits.argmax(1).byte())
    return torch.cat(acts), torch.cat(labels)


def _split(frames, valid_fraction):
    """Temporal split: the last frames validate, so calibration sees the drive's drift."""
    n_valid = max(1, int(round(len(frames) * valid_fraction)))
    if len(frames) - n_valid < 2:
        raise DaainError(f"{len(frames)} fit frames: expected at least {n_valid + 2}")
    return frames[:-n_valid], frames[-n_valid:]


def calibrate(scores, target_fpr):
    """The threshold that flags ``target_fpr`` of ``scores`` (clean held-out frames), with figures."""
    scores = np.asarray(scores, dtype=np.float64)
    threshold = float(np.quantile(scores, 1 - target_fpr, method="higher"))
    return threshold, {
        "target_fpr": target_fpr,
        "threshold": threshold,
        "frames": int(len(scores)),
        "flag_rate": float(np.mean(scores > threshold)),
        "score_quantiles": {q: float(np.quantile(scores, float(q))) for q in ("0.5", "0.9", "0.99")},
    }


def _train(key, config, flow_config, train, valid, progress, anomalous=None):
    """A detector trained on ``train`` activations (and early-stopped on ``valid``, unless None); the
    supervised head also learns from ``anomalous`` activations."""
    detector = DaainDetector(key, config.head, flow_config).to(train.device)
    detector.standardizer.fit(train)
    summary = fit_flow(detector.flow, detector.standardizer(train),
                       None if valid is None else detector.standardizer(valid), flow_config, progress)
    detector.eval()
    with torch.no_grad():
        clean = negative_log_likelihood(detector.flow, detector.standardizer(train))
        detector.head.fit(clean[1])
        if config.head == "supervised":
            detector.head.fit_supervised(clean, negative_log_likelihood(detector.flow,
                                                                        detector.standardizer(anomalous)))
    return detector, summary


def generated_anomalies(monitor, model, frames_bgr, config, progress=True):
    """Activations of each frame under each of ``config.anomaly_kinds`` (kind by kind), for the supervised head."""
    from daain_ros.evaluation.anomalies import perturb  # the generators, only when a supervised head is fitted

    size = check_network_size(*config.size)
    acts = [extract_activations(monitor, perturb(kind, frames_bgr, model=model, size=size, seed=config.seed),
                                size, config.batch_size, progress, f"{kind} activations")[0]
            for kind in config.anomaly_kinds]
    return torch.cat(acts)


def cross_fitted_scores(key, config, activations, frames, epochs, progress=True, anomalous=None):
    """Out-of-fold scores of the ``frames`` fit frames (activations: each frame, then its jittered copies).

    The frames are cut into ``config.calibration_folds`` consecutive stretches; each stretch is scored by
    a detector trained for ``epochs`` epochs on the others, so every fit frame gets a score from a
    detector that never saw it nor its neighbours in time. ``anomalous`` (the supervised head's generated
    anomalies, ``len(config.anomaly_kinds)`` blocks of one row per fit frame from the first on) loses the
    rows made from the held-out stretch too.
    """
    rows = config.augment_copies + 1
    scores = np.empty(frames)
    for stretch in tqdm(np.array_split(np.arange(frames), config.calibration_folds), desc="calibration folds",
                        unit="fold", disable=not progress, leave=False):
        held = torch.zeros(frames, dtype=torch.bool, device=activations.device)
        held[torch.as_tensor(stretch, device=activations.device)] = True
        held = held.repeat_interleave(rows)
        others = None
        if anomalous is not None:  # one block of the training frames per kind: row i made from frame i % block
            block = len(anomalous) // len(config.anomaly_kinds)
            made_from = torch.arange(len(anomalous), device=anomalous.device) % block
            others = anomalous[~torch.isin(made_from, torch.as_tensor(stretch, device=anomalous.device))]
        detector, _ = _train(key, config, replace(config.flow, epochs=epochs), activations[~held], None, False,
                             others)
        with torch.no_grad():
            scores[stretch] = detector(activations[held][::rows]).double().cpu().numpy()
    return scores


def fit_detector(model, frames_bgr, config=FitConfig(), progress=True):
    """Fits a detector for ``model`` on clean frames: key, activations, scaling, flow, head, threshold.

    Jittered copies widen what the flow trains and early-stops on. The threshold is calibrated on the
    fit frames as the camera gave them, each scored out of fold (:func:`cross_fitted_scores`): a drive
    drifts, and a threshold from the last fifth of the fit frames alone (30 of the protocol's 150) was
    the highest of 30 scores, set by whichever frame was most unusual, and left 10-60 % of later clean
    frames above it depending on the key. Jittered copies are not calibrated on: measured on the
    detector protocol, a few score up to 10**4 (clean frames: median 0.5), and a threshold over them
    flagged 12 % of sigma-0.03 noisy frames against about 40 % from plain frames.
    With ``calibration_folds`` < 2 the threshold comes from the validation frames alone.
    """
    size = check_network_size(*config.size)
    device = next(model.net.parameters()).device
    frames_bgr = list(frames_bgr)
    train_frames, valid_frames = _split(frames_bgr, config.valid_fraction)
    key_seed = config.key_seed if config.key_seed is not None else secrets.randbits(63)
    layers = probe_layers(model, size, config.layers, device)
    key = SamplingKey.generate(layers, size, key_seed, config.radius, config.target_dims)
    monitor = ActivationMonitor(model, key)
    try:
        train, _ = extract_activations(monitor, augment(train_frames, config.augment_copies, config.seed),
                                       size, config.batch_size, progress, "fit activations")
        valid, _ = extract_activations(monitor, augment(valid_frames, config.augment_copies, config.seed + 1),
                                       size, config.batch_size, progress, "validation activations")
        anomalous = (generated_anomalies(monitor, model, train_frames, config, progress)
                     if config.head == "supervised" else None)
    finally:
        monitor.remove()
    detector, summary = _train(key, config, config.flow, train, valid, progress, anomalous)
    if config.calibration_folds >= 2:
        scores = cross_fitted_scores(key, config, torch.cat([train, valid]), len(frames_bgr),
                                     summary["best_epoch"] + 1, progress, anomalous)
        method = f"out-of-fold scores of the {len(frames_bgr)} fit frames, {config.calibration_folds} folds"
    else:
        with torch.no_grad():
            scores = detector(valid[::config.augment_copies + 1]).double().cpu().numpy()
        method = f"scores of the {len(valid_frames)} validation frames"
    threshold, calibration = calibrate(scores, config.target_fpr)
    detector.threshold.fill_(threshold)
    detector.metadata.update({
        "fit": config.public_dict(),
        "training": {**summary, "train_frames": len(train_frames), "valid_frames": len(valid_frames),
                     "train_samples": len(train), "valid_samples": len(valid)},
        "calibration": {**calibration, "method": method},
        "coverage": key.coverage(),
    })
    return detector
