"""The DAAIN detector ("DAAIN: Detection of Anomalous and Adversarial Input using Normalizing Flows",
arXiv 2105.14638): standardisation, flow and head over a sampling key's activations, with a threshold
calibrated on held-out clean frames.
"""

import secrets
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from daain_ros.augment import augment
from daain_ros.errors import DaainError
from daain_ros.flow import FlowConfig, build_flow, fit_flow, negative_log_likelihood
from daain_ros.head import ScoreHead
from daain_ros.monitor import ActivationMonitor, probe_layers
from daain_ros.preprocess import DEFAULT_SIZE, check_network_size, preprocess
from daain_ros.sampling_key import SamplingKey
from daain_ros.standardizer import Standardizer


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
    head: str = "nll"
    target_fpr: float = 0.01
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


def fit_detector(model, frames_bgr, config=FitConfig(), progress=True):
    """Fits a detector for ``model`` on clean frames: key, activations, scaling, flow, head, threshold.

    Jittered copies widen what the flow trains and early-stops on; the threshold is calibrated on the
    validation frames as the camera gave them. Measured on the detector protocol, a few jittered copies
    score up to 10**4 (clean frames: median 0.5), so a threshold over them flagged 12 % of sigma-0.03 noisy
    frames against about 40 % from the plain validation frames, at 0-2 % of held-out clean frames either way.
    """
    size = check_network_size(*config.size)
    device = next(model.net.parameters()).device
    train_frames, valid_frames = _split(list(frames_bgr), config.valid_fraction)
    key_seed = config.key_seed if config.key_seed is not None else secrets.randbits(63)
    layers = probe_layers(model, size, config.layers, device)
    key = SamplingKey.generate(layers, size, key_seed, config.radius, config.target_dims)
    monitor = ActivationMonitor(model, key)
    try:
        train, _ = extract_activations(monitor, augment(train_frames, config.augment_copies, config.seed),
                                       size, config.batch_size, progress, "fit activations")
        valid, _ = extract_activations(monitor, augment(valid_frames, config.augment_copies, config.seed + 1),
                                       size, config.batch_size, progress, "validation activations")
    finally:
        monitor.remove()
    detector = DaainDetector(key, config.head, config.flow).to(device)
    detector.standardizer.fit(train)
    summary = fit_flow(detector.flow, detector.standardizer(train), detector.standardizer(valid), config.flow,
                       progress)
    with torch.no_grad():
        detector.head.fit(negative_log_likelihood(detector.flow, detector.standardizer(train))[1])
        valid_scores = detector(valid[::config.augment_copies + 1]).cpu().numpy()
    threshold, calibration = calibrate(valid_scores, config.target_fpr)
    detector.threshold.fill_(threshold)
    detector.metadata.update({
        "fit": config.public_dict(),
        "training": {**summary, "train_frames": len(train_frames), "valid_frames": len(valid_frames),
                     "train_samples": len(train), "valid_samples": len(valid)},
        "calibration": calibration,
        "coverage": key.coverage(),
    })
    return detector.eval()
