# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Baselines on logits and features with known scores, and on the official p2q8 weights."""

import math

import numpy as np
import pytest
import torch
from sklearn.covariance import LedoitWolf

from daain_ros.errors import DaainError, NotFittedError
from daain_ros.evaluation.baselines import (BASELINES, Entropy, Mahalanobis, MaxLogit, MaxSoftmax, MCDropout,
                                            baseline_scores, forward_with_features, pooled_features)
from daain_ros.segmentation.preprocess import preprocess


def two_images():
    """Image 0: uniform logits (maximally unsure); image 1: class 2 ahead by 10 on every pixel."""
    logits = torch.zeros(2, 4, 3, 5)
    logits[1, 2] = 10.0
    return logits


def test_max_softmax_by_hand():
    confident = math.exp(10) / (math.exp(10) + 3)
    scores = MaxSoftmax().fit().predict(two_images())
    torch.testing.assert_close(scores, torch.tensor([1 - 1 / 4, 1 - confident]))


def test_max_logit_is_negated_mean_of_pixel_maxima():
    logits = two_images()
    logits[1, 0, 0] = 12.0  # one row of image 1 now peaks at 12
    torch.testing.assert_close(MaxLogit().predict(logits), torch.tensor([0.0, -(12 * 5 + 10 * 10) / 15]))


def test_entropy_by_hand():
    p = math.exp(10) / (math.exp(10) + 3)
    q = (1 - p) / 3
    expected = torch.tensor([math.log(4), -(p * math.log(p) + 3 * q * math.log(q))])
    torch.testing.assert_close(Entropy().predict(two_images()), expected)


def test_logit_scores_refuse_other_shapes():
    with pytest.raises(DaainError, match="expected N x classes x H x W"):
        MaxSoftmax().predict(torch.zeros(2, 4))


def test_mahalanobis_equals_scikit_learn_and_needs_fitting():
    rng = np.random.default_rng(0)
    train = rng.multivariate_normal([1.0, -2.0, 0.5], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 0.5]], 200)
    test = rng.normal(size=(7, 3)) * 3
    detector = Mahalanobis()
    with pytest.raises(NotFittedError, match="before fit"):
        detector.predict(torch.from_numpy(test))
    assert detector.fit(torch.from_numpy(train)) is detector
    expected = LedoitWolf().fit(train).mahalanobis(test)
    np.testing.assert_allclose(detector.predict(torch.from_numpy(test)).numpy(), expected, rtol=1e-5)
    assert detector.predict(detector.mean[None]).item() == pytest.approx(0, abs=1e-9)
    with pytest.raises(DaainError, match="expected N x 3"):
        detector.predict(torch.zeros(2, 4))
    assert set(detector.state_dict()) == {"mean", "precision"}


@pytest.fixture(scope="module")
def frames(drive_frames):
    return preprocess([drive_frames[150], drive_frames[200]], (512, 256))


@pytest.mark.slow
def test_one_forward_gives_logits_and_pooled_encoder_features(p2q8, frames):
    with torch.inference_mode():
        logits, features = forward_with_features(p2q8, frames)
        torch.testing.assert_close(logits, p2q8.logits(frames))
        torch.testing.assert_close(features, p2q8.net.encoder.features(frames)[2].mean((2, 3)))
        doubled, same = forward_with_features(p2q8, frames, lambda x: 2 * p2q8.logits(x))  # as a monitor would
        torch.testing.assert_close(doubled, 2 * logits)
        torch.testing.assert_close(same, features)
    assert features.shape == (2, 256)


@pytest.mark.slow
def test_baseline_scores_share_the_forward(p2q8, drive_frames, frames):
    fit = preprocess(drive_frames[0:120:10], (512, 256))
    mahalanobis = Mahalanobis().fit(pooled_features(p2q8, fit))
    mc_dropout = MCDropout(p2q8, passes=2)
    with torch.inference_mode():
        logits, features = forward_with_features(p2q8, frames)
    scores = baseline_scores(frames, logits, features, mahalanobis, mc_dropout)
    assert tuple(scores) == ("msp", "max_logit", "entropy", "mahalanobis", "mc_dropout") == BASELINES
    torch.testing.assert_close(scores["msp"], MaxSoftmax().predict(logits))
    torch.testing.assert_close(scores["max_logit"], MaxLogit().predict(logits))
    torch.testing.assert_close(scores["entropy"], Entropy().predict(logits))
    torch.testing.assert_close(scores["mahalanobis"], mahalanobis.predict(pooled_features(p2q8, frames)))
    torch.testing.assert_close(scores["mc_dropout"], mc_dropout.predict(frames))
    assert all(s.shape == (2,) for s in scores.values())
    assert set(baseline_scores(frames, logits, features)) == {"msp", "max_logit", "entropy"}


@pytest.mark.slow
def test_mc_dropout_is_seeded_changes_the_output_and_leaves_the_model_clean(p2q8, frames):
    with torch.inference_mode():
        clean = p2q8.logits(frames)
    first = MCDropout(p2q8, p=0.1, passes=2, seed=5).predict(frames)
    torch.testing.assert_close(first, MCDropout(p2q8, p=0.1, passes=2, seed=5).predict(frames))
    assert not torch.equal(first, MCDropout(p2q8, p=0.1, passes=2, seed=6).predict(frames))
    assert not torch.allclose(first, Entropy().predict(clean))
    with torch.inference_mode():
        torch.testing.assert_close(p2q8.logits(frames), clean)
    with pytest.raises(DaainError, match="expected 0 < p < 1"):
        MCDropout(p2q8, p=1.0)
