# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The street-scene generator: deterministic, exact labels, valid train ids, smooth drives."""

from dataclasses import replace

import numpy as np
import pytest

from daain_ros.io.synthetic import (CAR, GENERATED_CLASSES, PERSON, POLE, ROAD, SIGN, SKY, Car, Person, Pole, drive,
                                    random_scene, render_scene, sample_scene)


def test_same_seed_same_frame_and_different_seeds_differ():
    image, labels = random_scene(7)
    again, labels_again = random_scene(7)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(labels, labels_again)
    other, _ = random_scene(8)
    assert np.abs(image.astype(int) - other.astype(int)).mean() > 20


@pytest.mark.parametrize("size", [(512, 256), (256, 128), (1024, 512)])
def test_shapes_dtypes_and_only_generated_train_ids(size):
    for seed in range(4):
        image, labels = random_scene(seed, size)
        assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
        assert labels.shape == (size[1], size[0]) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= set(GENERATED_CLASSES)


def test_layout_sky_above_road_below():
    with_sky = 0
    for seed in range(12):
        _, labels = random_scene(seed)
        assert labels[-1, labels.shape[1] // 2] == ROAD  # the camera drives in its lane
        assert not (labels[: labels.shape[0] // 3] == ROAD).any()
        assert not (labels[labels.shape[0] * 2 // 3:] == SKY).any()
        with_sky += (labels[: labels.shape[0] // 3] == SKY).any()
    assert with_sky >= 10


def _scene_without_traffic(seed):
    scene = sample_scene(np.random.default_rng(seed))
    world = replace(scene.world, cars=(), people=(), poles=(), trees=())
    # no cast shadows: the only pixels an object changes are its own
    return replace(scene, world=world, lighting=replace(scene.lighting, shadow=0.0), blur=0.0)


def _lane_centre(world):
    return -world.lanes * world.lane_width / 2 + (world.ego + 0.5) * world.lane_width


@pytest.mark.parametrize("kind", ["car", "person", "pole"])
def test_labels_are_exactly_where_the_object_was_drawn(kind):
    for seed in (1, 2, 3):
        scene = _scene_without_traffic(seed)
        world, cam = scene.world, scene.camera
        aside = 0.25 / cam.focal  # lateral offset per metre of distance: half-way to the image edge
        if kind == "car":
            obj = Car(_lane_centre(world), cam.s + 14, 0.0, 1, 4.4, 1.8, 1.5, 0.3, (40, 40, 220), (200, 30, 200))
            field, classes = "cars", (CAR,)
        elif kind == "person":
            obj = Person(cam.x + 10 * aside, cam.s + 10, 1.2, 1.8, (30, 200, 30), (200, 60, 20), (90, 130, 200), 0.5)
            field, classes = "people", (PERSON,)
        else:
            obj = Pole(cam.x - 14 * aside, cam.s + 14, 7.0, 0.25, (200, 0, 200), 1.5,
                       ("circle", (0, 220, 255), (255, 255, 0), 0.4, 2.5))
            field, classes = "poles", (POLE, SIGN)
        without, labels_without = render_scene(scene)
        with_object = replace(scene, world=replace(world, **{field: (obj,)}))
        image, labels = render_scene(with_object)
        changed = (image != without).any(-1)
        drawn = np.isin(labels, classes)
        assert drawn.sum() > 50
        np.testing.assert_array_equal(changed, drawn)
        assert not np.isin(labels_without, classes).any()
        np.testing.assert_array_equal(labels[~drawn], labels_without[~drawn])


def test_drive_is_deterministic_and_smooth():
    frames = list(drive(5, 12))
    again = list(drive(5, 12))
    for (a, la), (b, lb) in zip(frames, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    step = [np.abs(frames[i][0].astype(int) - frames[i + 1][0].astype(int)).mean() for i in range(11)]
    label_change = [(frames[i][1] != frames[i + 1][1]).mean() for i in range(11)]
    unrelated = np.mean([np.abs(frames[0][0].astype(int) - random_scene(s)[0].astype(int)).mean()
                         for s in (97, 98, 99)])
    assert max(step) < 15 and max(step) < 0.3 * unrelated  # measured: 7.3-11.4 against 53
    assert max(label_change) < 0.1  # measured: at most 8.5 % of the pixels change class
    assert np.abs(frames[0][0].astype(int) - frames[-1][0].astype(int)).mean() > max(step)  # it does move


def test_drive_objects_approach_the_camera():
    frames = list(drive(11, 30))
    sizes = [(labels == CAR).sum() + (labels == PERSON).sum() for _, labels in frames]
    assert len(set(sizes)) > 1
    for _, labels in frames:
        assert set(np.unique(labels)) <= set(GENERATED_CLASSES)
