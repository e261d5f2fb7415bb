# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The secret student check and its adapted attacker, on the default model at 128x64."""

import copy

import numpy as np
import pytest
import torch

from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive import AdaptiveConfig, adaptive_attack
from daain_ros.evaluation.adaptive_critics import COPIES
from daain_ros.evaluation.attacks import network_input, pixel_batch
from daain_ros.evaluation.students import StudentCheck, StudentCritic, train_student
from daain_ros.segmentation.preprocess import preprocess

SIZE = (128, 64)


@pytest.fixture(scope="module")
def student(default_espnet, small_fit_frames):
    return train_student(default_espnet, small_fit_frames, SIZE, seed=1, epochs=30)


def test_a_student_is_seeded_learns_the_labels_and_leaves_torchs_random_state_alone(default_espnet, small_fit_frames,
                                                                                    student):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    same, other = (train_student(default_espnet, small_fit_frames, SIZE, seed, epochs=30) for seed in (1, 2))
    assert torch.equal(torch.rand(3), expected)
    parameters = [torch.cat([p.flatten() for p in s.parameters()]) for s in (student, same, other)]
    assert torch.equal(parameters[0], parameters[1]) and not torch.allclose(parameters[0], parameters[2])
    barely = train_student(default_espnet, small_fit_frames, SIZE, seed=1, epochs=1)
    trained = StudentCheck(default_espnet, student, SIZE)(small_fit_frames)
    assert trained.mean() > 0.5 and trained.mean() > StudentCheck(default_espnet, barely, SIZE)(small_fit_frames).mean()


def test_a_briefly_trained_student_predicts_as_it_learnt(small_fit_frames, student):
    """After 30 steps, BatchNorm's running statistics, which the student judges with, match its training batches'."""
    x = preprocess(small_fit_frames, SIZE)
    with torch.no_grad():
        learnt = copy.deepcopy(student).train()(x).argmax(1)
        judged = student(x).argmax(1)
    assert (judged == learnt).float().mean() > 0.9


def test_the_critic_sees_what_the_check_measures(default_espnet, typical, student, small_held_out):
    critic = StudentCritic(typical, [student, student], 0.9)
    with torch.no_grad():
        _, scores = critic(network_input(pixel_batch(small_held_out, "cpu") / 255, SIZE))
    inner = len(typical.names)
    assert scores.shape == (len(small_held_out), inner + 2 * COPIES)
    # each column is the log of the share of pixels on which the student does not give ESPNet's label
    disagreement = 1 - StudentCheck(default_espnet, student, SIZE)(small_held_out)
    np.testing.assert_allclose(scores[:, inner:].exp().numpy(), np.repeat(disagreement[:, None], 2 * COPIES, 1),
                               atol=2e-3)
    limits = critic.limits(scores)
    torch.testing.assert_close(limits[:, inner:], scores[:, inner:].clamp_min(float(np.log(1 - 0.9))))
    torch.testing.assert_close(limits[:, :inner], typical.limits(scores[:, :inner]))


def test_the_adapted_attacker_keeps_its_student_agreeing_and_is_seeded(default_espnet, typical, student,
                                                                       small_fit_frames):
    """On frames the student knows (it agrees with ESPNet on about 80 % of their pixels), so the check binds."""
    config = AdaptiveConfig(steps=30, restarts=1)
    check = StudentCheck(default_espnet, student, SIZE)
    frames = small_fit_frames[:3]
    adapted, again = (adaptive_attack(default_espnet, StudentCritic(typical, [student], 0.99), frames, 8 / 255,
                                      config, seed=0).images for _ in range(2))
    ignoring = adaptive_attack(default_espnet, typical, frames, 8 / 255, config, seed=0).images
    assert np.all(check(adapted) > check(ignoring))
    assert all(np.array_equal(a, b) for a, b in zip(adapted, again))


@pytest.mark.parametrize("size, epochs, message", [((124, 64), 1, "multiples of 8"), (SIZE, 0, "0 epochs")])
def test_bad_student_settings_are_errors(default_espnet, small_fit_frames, size, epochs, message):
    with pytest.raises(DaainError, match=message):
        train_student(default_espnet, small_fit_frames, size, seed=1, epochs=epochs)


def test_an_adapted_attacker_needs_a_surrogate_student():
    with pytest.raises(DaainError, match="at least one"):
        StudentCritic(None, [], 0.9)
