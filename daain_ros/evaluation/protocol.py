# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""DAAIN against the usual scores, on every anomaly kind: the numbers behind ``daain evaluate``.

All images are first brought to the network size as uint8, so a corruption's severity and an attack's
budget mean what they say at the network input, and clean and perturbed frames differ only by the
perturbation. Every method scores the same images from the same forward (MC dropout adds its passes).
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from daain_ros.detector.monitor import ActivationMonitor
from daain_ros.evaluation.adaptive import DAMAGED, AdaptiveConfig, adaptive_attack
from daain_ros.evaluation.adaptive_critics import TRANSFER_MARGIN, DetectorCritic
from daain_ros.evaluation.anomalies import is_attack, perturb
from daain_ros.evaluation.attacks import ATTACKS, apply_uap, compare_labels, fit_uap
from daain_ros.evaluation.baselines import Mahalanobis, MCDropout, baseline_scores, forward_with_features
from daain_ros.evaluation.corruptions import CORRUPTIONS
from daain_ros.evaluation.key_agnostic import LayerStatistics, TypicalityCritic
from daain_ros.evaluation.metrics import detection_metrics, flag_rate
from daain_ros.segmentation.preprocess import preprocess, resize_bgr

METHODS = ("daain", "msp", "max_logit", "entropy", "mc_dropout", "mahalanobis")
ADAPTIVE_EPS = (2 / 255, 4 / 255, 8 / 255)


@dataclass(frozen=True)
class EvaluationConfig:
    """What ``evaluate`` runs; the defaults are the protocol of docs/evaluation.md."""

    severities: tuple = (3,)
    eps: tuple = (4 / 255,)
    extra_eps: tuple = (2 / 255, 8 / 255)
    extra_eps_stride: int = 4
    attack_steps: int = 10
    mc_passes: int = 4
    batch_size: int = 8
    seed: int = 0
    kinds: tuple = field(default_factory=lambda: ATTACKS + tuple(CORRUPTIONS))


def at_network_size(images_bgr, size):
    """uint8 BGR copies at the network size (what the detector and the anomalies act on)."""
    return [np.clip(resize_bgr(image, size).round(), 0, 255).astype(np.uint8) for image in images_bgr]


class Scorer:
    """Runs the monitored forward once per batch and derives every method's score from it.

    DAAIN's from the sampled activations, the baselines' (``baseline_scores``) from the logits and pooled features.
    """

    def __init__(self, pipeline, mahalanobis=None, mc_passes=4, seed=0):
        self.pipeline = pipeline
        self.monitor = ActivationMonitor(pipeline.model, pipeline.detector.key)
        self.mahalanobis = mahalanobis
        self.mc_dropout = MCDropout(pipeline.model, passes=mc_passes, seed=seed) if mc_passes else None

    def _forward(self, x):
        """(logits, DAAIN scores, pooled encoder features) from one forward."""
        with torch.inference_mode():
            (logits, activations), pooled = forward_with_features(self.pipeline.model, x, self.monitor)
            return logits, self.pipeline.detector(activations), pooled

    def features(self, images, batch_size=8):
        """Pooled encoder features of clean fit images, for the Mahalanobis baseline."""
        return torch.cat([self._forward(self._input(images[i:i + batch_size]))[2]
                          for i in range(0, len(images), batch_size)])

    def _input(self, images):
        return preprocess(images, self.pipeline.size, self.pipeline.device)

    def score(self, images, batch_size=8):
        """The scores, as dict method -> scores (float64, one per image), and the predicted labels."""
        out = {m: [] for m in METHODS}
        labels = []
        for start in range(0, len(images), batch_size):
            x = self._input(images[start:start + batch_size])
            logits, daain, features = self._forward(x)
            batch = {"daain": daain, **baseline_scores(x, logits, features, self.mahalanobis, self.mc_dropout)}
            for method, values in batch.items():
                out[method].append(values)
            labels.append(logits.argmax(1).byte().cpu().numpy())
        scores = {m: torch.cat(v).double().cpu().numpy() for m, v in out.items() if v}
        return scores, np.concatenate(labels)


def _settings(kind, config):
    """(setting name, value, image stride) of each run of ``kind``."""
    if not is_attack(kind):
        return [("severity", s, 1) for s in config.severities]
    return [("eps", e, 1) for e in config.eps] + [("eps", e, config.extra_eps_stride) for e in config.extra_eps]


def _anomalous(kind, setting, value, images, fit_images, model, config):
    size = (images[0].shape[1], images[0].shape[0])
    if kind == "uap":
        perturbation = fit_uap(model, fit_images, value, size, config.seed, config.attack_steps)
        return apply_uap(images, perturbation)
    if setting == "eps":
        return perturb(kind, images, eps=value, model=model, size=size, seed=config.seed, steps=config.attack_steps)
    return perturb(kind, images, severity=value, seed=config.seed)


def evaluate(pipeline, clean_images, fit_images=None, config=EvaluationConfig(), progress=True):
    """Scores clean held-out images and each anomaly kind/setting; returns the result rows and raw scores.

    :param fit_images: clean fit-split frames for the Mahalanobis fit and the universal perturbation; when
        None, Mahalanobis is left out and the universal perturbation is fitted on the held-out frames.
    """
    size = pipeline.size
    clean = at_network_size(clean_images, size)
    fit = at_network_size(fit_images, size) if fit_images else None
    scorer = Scorer(pipeline, mc_passes=config.mc_passes, seed=config.seed)  # one monitor graph traced
    if fit:
        scorer.mahalanobis = Mahalanobis().fit(scorer.features(fit))
    clean_scores, clean_labels = scorer.score(clean, config.batch_size)
    runs = [(kind, *setting) for kind in config.kinds for setting in _settings(kind, config)]
    rows, raw = [], {"clean": clean_scores}
    for kind, setting, value, stride in tqdm(runs, desc="evaluate", unit="run", disable=not progress):
        subset = clean[::stride]
        images = _anomalous(kind, setting, value, subset, fit or subset, pipeline.model, config)
        scores, labels = scorer.score(images, config.batch_size)
        name = f"{kind}@{setting}={value:.4g}"
        raw[name] = scores
        effect = compare_labels(clean_labels[::stride], labels) if is_attack(kind) else {}
        for method, values in scores.items():
            row = {"kind": kind, setting: value, "method": method, "frames": len(values),
                   **detection_metrics(clean_scores[method], values), **effect}
            if method == "daain":
                row["flag_rate"] = flag_rate(values, pipeline.threshold)
            rows.append(row)
    return {"rows": rows, "clean_flag_rate": flag_rate(clean_scores["daain"], pipeline.threshold),
            "clean_frames": len(clean)}, raw


def _attackers(pipeline, surrogates, fit):
    """(name, keys attacked, critic factory) of each adaptive attacker the inputs allow (issue 16)."""
    model = pipeline.model
    attackers = [("white-box", 1, lambda: DetectorCritic(model, [pipeline.detector]))]
    if surrogates:
        attackers.append(("surrogate", 1, lambda: DetectorCritic(model, surrogates[:1], TRANSFER_MARGIN)))
    if len(surrogates) > 1:
        attackers.append(("surrogate-eot", len(surrogates),
                          lambda: DetectorCritic(model, surrogates, TRANSFER_MARGIN)))
    if fit:
        attackers.append(("key-agnostic", 0, lambda: TypicalityCritic(
            model, LayerStatistics.fit(model, fit, pipeline.size), fit)))
    return attackers


def _judged(attacker, eps, outcome, scorer, clean, config):
    """One ``adaptive`` row: the real detector's verdict on an attacker's images at one budget.

    ``success_rate`` is added by :func:`within_budget`, once the attacker's smaller budgets are known.
    """
    (name, keys, margin), (clean_scores, clean_labels) = attacker, clean
    scores, labels = scorer.score(outcome.images)
    daain = scores["daain"]
    threshold = scorer.pipeline.threshold
    flagged = ~(daain <= threshold)  # a non-finite score is flagged, as the node does
    agreement = (labels == clean_labels).mean((1, 2))
    frames = len(daain)
    successes = (agreement <= DAMAGED) & ~flagged
    return {"attacker": name, "eps": eps, "frames": frames, "success_rate_at_budget": float(successes.mean()),
            "successes": successes.tolist(), "flag_rate": float(flagged.mean()),
            "pixel_agreement": float(agreement.mean()), "steps": config.steps, "restarts": config.restarts,
            "steps_per_image": float(outcome.steps.mean()), "seconds_per_image": outcome.seconds / frames,
            "keys": keys, "margin": margin, "clean_flag_rate": float(np.mean(~(clean_scores <= threshold))),
            "scores": daain.tolist(), "clean_scores": clean_scores.tolist(), "agreements": agreement.tolist()}


def adaptive_rows(pipeline, surrogates, clean_images, fit_images=None, config=AdaptiveConfig(),
                  eps=ADAPTIVE_EPS, seed=0, progress=True):
    """The real detector against each adaptive attacker at each budget: the ``adaptive`` list of results.json.

    ``white-box`` attacks the real detector; ``surrogate`` the first of ``surrogates`` (detectors of the
    same recipe with their own keys); ``surrogate-eot`` all of them at once (when there are several);
    ``key-agnostic`` keeps every leaf layer typical of ``fit_images`` (when given). A success is a frame
    that, as sent (uint8), is damaged (pixel agreement with the clean prediction <= ``DAMAGED``) and
    not flagged by the real detector.
    """
    clean = at_network_size(clean_images, pipeline.size)
    fit = at_network_size(fit_images, pipeline.size) if fit_images else None
    scorer = Scorer(pipeline, mc_passes=0)
    clean_scores, clean_labels = scorer.score(clean, config.batch_size)
    rows = []
    for name, keys, make in tqdm(_attackers(pipeline, list(surrogates), fit), desc="adaptive", unit="attacker",
                                 disable=not progress):
        critic = make()
        outcomes = [adaptive_attack(pipeline.model, critic, clean, value, config, seed) for value in eps]
        rows += within_budget([_judged((name, keys, critic.margin), value, outcome, scorer,
                                       (clean_scores["daain"], clean_labels), config)
                               for value, outcome in zip(eps, outcomes)])
    return rows


def within_budget(rows):
    """One attacker's rows with ``success_rate`` the best within each budget: that budget's or any smaller one's.

    An image that succeeded at 2/255 is an attack within 4/255 as well, whether or not the 4/255 run (whose
    step sizes scale with the budget) ended there; ``success_rate_at_budget`` keeps the run's own rate.
    """
    best = None
    for row in sorted(rows, key=lambda r: r["eps"]):
        own = np.asarray(row["successes"], bool)
        best = own if best is None else best | own
        row["success_rate"] = float(best.mean())
    return rows


def domain_shift(pipeline, sources, batch_size=8):
    """DAAIN score distribution of other cameras and conditions: name -> scores."""
    scorer = Scorer(pipeline, mc_passes=0)
    return {name: scorer.score(at_network_size(images, pipeline.size), batch_size)[0]["daain"]
            for name, images in sources.items()}
