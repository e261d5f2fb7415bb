# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Procedural street scenes with their exact Cityscapes train-id maps: data for the default model and demo.

A pinhole camera at ``height`` above flat ground looks down a gently curving road. Ground pixels are
classified from their road-relative coordinates (road, lane markings, curb, sidewalk, grass); facades,
hedges, trees, poles, signs, cars and people are 3-D polygons projected and painted near over far. Every
pixel is painted with a *material* (a colour, a texture strength and a train id), so the image is the
materials' colours under the scene's lighting plus texture and the label map is their train ids: the
labels match the drawn shapes exactly (the optional camera blur softens only the image). numpy and
OpenCV only, seeded, deterministic; a 512x256 frame takes about 20 ms of one core.
"""

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from daain_ros.errors import DaainError
from daain_ros.segmentation.cityscapes import CLASS_NAMES
from daain_ros.segmentation.network_size import DEFAULT_SIZE

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR = (
    CLASS_NAMES.index(name) for name in ("road", "sidewalk", "building", "pole", "traffic sign",
                                         "vegetation", "terrain", "sky", "person", "car"))
#: The train ids the generator draws; the other Cityscapes classes never occur.
GENERATED_CLASSES = (ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR)
NEAR, FAR = 1.0, 160.0  # metres: geometry nearer is clipped, objects farther are not drawn
FPS = 15.0  # frame rate of ``drive``
_SHIFT = 3  # sub-pixel bits of cv2.fillPoly
_NOISE_POOL = 8  # distinct texture noise fields per image size
_ONE = 1 << _SHIFT


@dataclass(frozen=True, eq=False)
class Facade:
    """A building front or hedge along one side of the road, from ``s0`` to ``s1`` metres along it."""

    side: int  # -1 left, +1 right
    s0: float
    s1: float
    offset: float  # lateral distance of the facade plane from the road centre
    height: float
    color: tuple
    kind: str = "building"  # or "vegetation"
    windows: tuple = None  # (floor height, spacing, width, height, glass BGR)
    top: np.ndarray = None  # vegetation: heights of the top edge, evenly spaced from s0 to s1


@dataclass(frozen=True, eq=False)
class Car:
    x: float  # lateral centre, road-relative
    s: float  # centre along the road at time 0
    speed: float  # m/s along the road
    facing: int  # +1 drives away from the camera (rear visible), -1 oncoming
    length: float
    width: float
    height: float
    hood: float  # fraction of the length in front of the cabin
    color: tuple
    glass: tuple


@dataclass(frozen=True, eq=False)
class Person:
    x: float
    s: float
    speed: float
    height: float
    shirt: tuple
    trousers: tuple
    skin: tuple
    phase: float


@dataclass(frozen=True, eq=False)
class Pole:
    x: float
    s: float
    height: float
    width: float
    color: tuple
    arm: float  # street-lamp arm length towards the road (0: none)
    sign: tuple = None  # (shape, BGR, inner BGR, radius, height above ground)


@dataclass(frozen=True, eq=False)
class Tree:
    x: float
    s: float
    trunk: float
    radius: float
    crown: np.ndarray  # radius factors around the crown outline
    color: tuple
    bark: tuple


@dataclass(frozen=True, eq=False)
class World:
    """Everything static about a street (and its traffic at time 0): what ``render_scene`` draws."""

    lanes: int
    lane_width: float
    oncoming: int  # lanes left of the centre line carry oncoming traffic
    ego: int  # the camera's lane (no parked or slower traffic ahead in it)
    edges: tuple  # (left, right) lateral distance of the road edge from the centre
    curb: float
    sidewalks: tuple  # (left, right) widths
    grass: tuple  # (left, right) widths of the terrain strip behind the sidewalk
    back: tuple  # (left, right) class of the ground behind: TERRAIN or SIDEWALK
    centre_line: str  # "dashed", "solid" or "double"
    dash: tuple  # (length, period) of dashed lines
    crosswalk: float  # position along the road, or None
    curvature: tuple  # ((amplitude, wavelength, phase), ...): road curvature along s
    colors: dict
    sky: tuple  # (horizon BGR, zenith BGR, cloud cover 0..1)
    skyline: np.ndarray  # heights (radians above the horizon) over bearings -1.6..1.6 rad, or None
    facades: tuple
    trees: tuple
    poles: tuple
    cars: tuple
    people: tuple
    texture_seed: int

    def curvature_at(self, s):
        return sum(a * math.sin(2 * math.pi * s / wave + phase) for a, wave, phase in self.curvature)


@dataclass(frozen=True)
class Camera:
    s: float  # position along the road
    x: float  # lateral position, road-relative (positive right)
    height: float
    yaw: float  # radians, positive to the right
    horizon: float  # image row of the horizon as a fraction of the height
    focal: float  # focal length as a fraction of the width


@dataclass(frozen=True)
class Lighting:
    gain: float
    tint: tuple  # BGR multipliers
    gamma: float
    sun: int  # -1 sun behind the left facades (they shadow the road), +1 right, 0 overcast
    shadow: float  # darkening of cast shadows, 0..1
    shadow_length: float  # shadow width per metre of facade height
    contrast: float
    vignette: float


@dataclass(frozen=True)
class Scene:
    world: World
    camera: Camera
    lighting: Lighting
    time: float = 0.0
    frame_seed: int = 0
    texture: bool = True  # surface texture noise
    sensor_noise: float = 2.0  # std of per-frame pixel noise
    blur: float = 0.0  # sigma of the camera blur (image only)


# ----------------------------------------------------------------------------------------------- sampling

def _bgr(rng, base, spread):
    return tuple(np.clip(np.add(base, rng.uniform(-spread, spread, 3)), 0, 255).tolist())


def _pick(rng, options):
    return options[rng.integers(len(options))]


_BUILDING_COLORS = ((150, 160, 170), (120, 130, 150), (90, 100, 150), (170, 180, 190), (110, 110, 110),
                    (80, 90, 110), (190, 195, 200), (120, 150, 180), (60, 70, 90))
_CAR_COLORS = ((30, 30, 30), (200, 200, 200), (230, 230, 230), (120, 120, 120), (40, 40, 170),
               (150, 80, 30), (40, 120, 40), (40, 180, 220), (90, 60, 40), (160, 160, 150))
_CLOTHES = ((30, 30, 30), (60, 60, 60), (150, 80, 40), (40, 40, 140), (180, 180, 180), (50, 90, 60),
            (120, 130, 150), (20, 20, 90), (160, 140, 60))
_SKIN = ((90, 120, 170), (120, 150, 200), (60, 80, 110), (140, 170, 220))
_SKIES = {"clear": ((235, 215, 195), (205, 145, 85)), "overcast": ((215, 210, 205), (190, 185, 180)),
          "dusk": ((140, 185, 240), (150, 110, 95)), "hazy": ((220, 215, 205), (200, 170, 140))}


def _populate(rng, lo, hi, gap, make):
    """Objects along the road from ``lo`` to ``hi`` with random gaps drawn by ``gap``."""
    out, s = [], lo + rng.uniform(0, gap()) * 0.5
    while s < hi:
        item = make(s)
        if item is not None:
            out.append(item)
        s += gap()
    return out


def _facades(rng, side, lo, hi, base, style):
    kinds = {"urban": (0.85, 0.1), "suburban": (0.45, 0.35), "green": (0.1, 0.6)}[style]
    out, s = [], lo
    while s < hi:
        length = rng.uniform(8, 26)
        u = rng.random()
        offset = base + rng.uniform(0, 1.5)
        if u < kinds[0]:
            windows = None
            if rng.random() < 0.85:
                floor = rng.uniform(2.9, 3.6)
                windows = (floor, rng.uniform(1.8, 3.5), rng.uniform(0.7, 1.4), floor * rng.uniform(0.35, 0.6),
                           _bgr(rng, (70, 60, 50), 30))
            height = rng.uniform(5, 32) if style == "urban" else rng.uniform(4, 12)
            out.append(Facade(side, s, s + length, offset, height, _bgr(rng, _pick(rng, _BUILDING_COLORS), 25),
                              windows=windows))
        elif u < kinds[0] + kinds[1]:
            height = rng.uniform(2, 12)
            top = height + np.cumsum(rng.normal(0, 0.6, int(length / 1.5) + 2))
            out.append(Facade(side, s, s + length, offset + rng.uniform(0, 3), height,
                              _bgr(rng, (45, 110, 70), 25), kind="vegetation", top=np.clip(top, 1.0, None)))
        s += length + (rng.uniform(0, 4) if rng.random() < 0.3 else 0)
    return out


def _car(rng, x, s, speed, facing):
    if rng.random() < 0.6:  # saloon or hatchback
        length, height, hood = rng.uniform(3.8, 4.8), rng.uniform(1.35, 1.55), rng.uniform(0.25, 0.33)
    else:  # estate, SUV or van
        length, height, hood = rng.uniform(4.2, 5.0), rng.uniform(1.6, 1.95), rng.uniform(0.15, 0.25)
    return Car(x, s, speed, facing, length, rng.uniform(1.7, 2.0), height, hood,
               _bgr(rng, _pick(rng, _CAR_COLORS), 20), _bgr(rng, (60, 50, 40), 15))


def _traffic(rng, world_range, lanes, lane_width, oncoming, ego, ego_speed, duration):
    cars = []
    for lane in range(lanes):
        x = -lanes * lane_width / 2 + (lane + 0.5) * lane_width
        if lane < oncoming:
            speed, facing = -rng.uniform(8, 15), -1
        elif lane == ego:
            speed, facing = ego_speed + rng.uniform(0.3, 2.0), 1
        else:
            speed, facing = ego_speed + rng.uniform(-3, 3), 1
        lo, hi = world_range
        lo = min(lo, lo + (ego_speed - speed) * duration) - 10
        hi = max(hi, hi + (ego_speed - speed) * duration)
        if lane == ego:
            lo = world_range[0] + 38 + rng.uniform(0, 30)
        density = rng.uniform(12, 60)
        cars += _populate(rng, lo, hi, lambda: rng.uniform(7, 2 * density),
                          lambda s, x=x, v=speed, f=facing: _car(rng, x + rng.normal(0, 0.2), s, v, f))
    return cars


def sample_world(rng, length=FAR + 60, ego_speed=0.0, duration=0.0):
    """A random street ``length`` metres long (from 20 m behind s = 0) with traffic for ``duration`` s."""
    lanes = int(rng.integers(2, 5))
    lane_width = rng.uniform(3.0, 3.8)
    oncoming = lanes // 2 if rng.random() < 0.8 else 0
    parking = [rng.uniform(2.0, 2.5) if rng.random() < 0.4 else 0.0 for _ in range(2)]
    edges = tuple(lanes * lane_width / 2 + p for p in parking)
    sidewalks = tuple(rng.uniform(1.5, 5.0) for _ in range(2))
    grass = tuple(rng.uniform(1.0, 6.0) if rng.random() < 0.35 else 0.0 for _ in range(2))
    back = tuple(TERRAIN if rng.random() < 0.5 else SIDEWALK for _ in range(2))
    styles = [_pick(rng, ("urban", "urban", "suburban", "green")) for _ in range(2)]
    lo, hi = -20.0, length - 20.0
    ego = int(rng.integers(oncoming, lanes))
    roadside = [_roadside(rng, side, edges[i], sidewalks[i], grass[i], styles[i], (lo, hi), duration)
                for i, side in enumerate((-1, 1))]
    cars = _traffic(rng, (lo, hi), lanes, lane_width, oncoming, ego, ego_speed, duration)
    for i, side in enumerate((-1, 1)):
        if parking[i]:
            x = side * (edges[i] - parking[i] / 2)
            cars += _populate(rng, lo, hi, lambda: rng.uniform(5, 18), lambda s, x=x: _parked(rng, x, s))
    sky = _pick(rng, tuple(_SKIES))
    horizon, zenith = (_bgr(rng, c, 12) for c in _SKIES[sky])
    skyline = None
    if rng.random() < 0.6:
        steps = np.repeat(rng.uniform(0.0, 0.06, 80) * (rng.random(80) < 0.7), 8)
        skyline = cv2.blur(steps.reshape(1, -1).astype(np.float32), (3, 1)).ravel()
    centre_line = _pick(rng, ("dashed", "solid", "double"))
    dash = (rng.uniform(2, 4), rng.uniform(7, 12))
    crosswalk = float(rng.uniform(10, 80)) if rng.random() < 0.25 else None
    curvature = tuple((rng.uniform(-1, 1) / 400, rng.uniform(150, 500), rng.uniform(0, 6.3))
                      for _ in range(2)) if rng.random() < 0.7 else ()
    colors = _street_colors(rng)
    cover = float(rng.uniform(0, 1)) if sky != "overcast" else 0.0
    facades, poles, trees, people = (tuple(x for side in roadside for x in side[k]) for k in range(4))
    return World(lanes=lanes, lane_width=lane_width, oncoming=oncoming, ego=ego, edges=edges, curb=0.3,
                 sidewalks=sidewalks, grass=grass, back=back, centre_line=centre_line, dash=dash,
                 crosswalk=crosswalk, curvature=curvature, colors=colors, sky=(horizon, zenith, cover),
                 skyline=skyline, facades=facades, trees=trees, poles=poles, cars=tuple(cars), people=people,
                 texture_seed=int(rng.integers(2**31)))


def _roadside(rng, side, edge, sidewalk, grass, style, extent, duration):
    """Facades, poles, trees and pedestrians along one side: ``side`` -1 left, +1 right."""
    lo, hi = extent
    curb_out = edge + 0.3
    walk = curb_out + sidewalk
    facades = _facades(rng, side, lo, hi + 40, walk + grass + rng.uniform(0, 2), style)
    poles, trees = [], []
    if rng.random() < 0.75:
        spacing = rng.uniform(15, 45)
        poles = _populate(rng, lo, hi + 40, lambda: spacing * rng.uniform(0.8, 1.2),
                          lambda s: _pole(rng, side * (curb_out + rng.uniform(0.3, 0.8)), s))
    if rng.random() < 0.5 or style == "green":
        spacing = rng.uniform(7, 25)
        tree_x = walk + grass / 2 if grass > 1.5 else curb_out + rng.uniform(0.6, 1.2)
        trees = _populate(rng, lo, hi + 40, lambda: spacing * rng.uniform(0.7, 1.3),
                          lambda s: _tree(rng, side * tree_x, s))
    crowd = rng.uniform(3, 30)
    people = _populate(rng, lo - 1.6 * duration, hi + 1.6 * duration, lambda: rng.exponential(crowd) + 0.8,
                       lambda s: _person(rng, side * (curb_out + rng.uniform(0.3, sidewalk)), s))
    return facades, poles, trees, people


def _parked(rng, x, s):
    """A parked car facing either way, or a free space (None)."""
    return _car(rng, x, s, 0.0, int(rng.choice((-1, 1)))) if rng.random() < 0.75 else None


def _street_colors(rng):
    road = _bgr(rng, (95, 95, 95), 25)
    sidewalk = _pick(rng, ((150, 150, 150), (120, 130, 160), (170, 170, 165)))
    return {"road": road, "sidewalk": _bgr(rng, sidewalk, 20), "curb": _bgr(rng, (175, 175, 175), 20),
            "terrain": _bgr(rng, _pick(rng, ((70, 150, 120), (80, 130, 150))), 20),
            "white": _bgr(rng, (215, 215, 215), 20), "yellow": _bgr(rng, (40, 185, 215), 20),
            "skyline": _bgr(rng, (150, 140, 135), 25)}


def _pole(rng, x, s):
    sign = None
    if rng.random() < 0.6:
        shape = _pick(rng, ("circle", "triangle", "square", "diamond"))
        color = _pick(rng, ((40, 40, 200), (160, 80, 20), (40, 200, 230), (230, 230, 230)))
        sign = (shape, _bgr(rng, color, 15), _bgr(rng, _pick(rng, ((235, 235, 235), (30, 30, 30))), 10),
                rng.uniform(0.35, 0.6), rng.uniform(2.0, 3.0))
    arm = rng.uniform(1.0, 2.5) * -np.sign(x) if rng.random() < 0.5 else 0.0
    height, width = rng.uniform(4, 9), rng.uniform(0.15, 0.35)
    return Pole(x, s, height, width, _bgr(rng, _pick(rng, ((120, 120, 120), (60, 70, 60), (40, 40, 40))), 15),
                arm, sign)


def _tree(rng, x, s):
    return Tree(x + rng.normal(0, 0.2), s, rng.uniform(1.5, 3.5), rng.uniform(1.2, 3.5),
                np.clip(1 + rng.normal(0, 0.15, 18), 0.6, 1.4), _bgr(rng, (40, 100, 55), 25),
                _bgr(rng, (50, 60, 75), 15))


def _person(rng, x, s):
    speed = rng.choice((-1, 1)) * rng.uniform(0.8, 1.7) if rng.random() < 0.7 else 0.0
    return Person(x, s, speed, rng.uniform(1.5, 1.95), _bgr(rng, _pick(rng, _CLOTHES), 25),
                  _bgr(rng, _pick(rng, _CLOTHES), 25), _bgr(rng, _pick(rng, _SKIN), 15), rng.uniform(0, 6.3))


def sample_camera(rng, world, s=0.0):
    x = -world.lanes * world.lane_width / 2 + (world.ego + 0.5) * world.lane_width + rng.uniform(-0.4, 0.4)
    return Camera(s=s, x=x, height=rng.uniform(1.2, 1.8), yaw=rng.uniform(-0.06, 0.06),
                  horizon=rng.uniform(0.36, 0.5), focal=rng.uniform(0.55, 1.1))


def sample_lighting(rng, sun=None):
    sun = int(rng.choice((-1, 0, 1))) if sun is None else sun
    tint = rng.uniform(0.85, 1.15, 3)
    return Lighting(gain=rng.uniform(0.55, 1.25), tint=tuple(tint / tint.mean()), gamma=rng.uniform(0.8, 1.25),
                    sun=sun, shadow=rng.uniform(0.3, 0.6) if sun else 0.0, shadow_length=rng.uniform(0.3, 1.5),
                    contrast=rng.uniform(0.8, 1.2), vignette=rng.uniform(0, 0.35))


def sample_scene(rng):
    """A random scene: a new street, camera, lighting and traffic."""
    rng = np.random.default_rng(rng)
    world = sample_world(rng)
    return Scene(world, sample_camera(rng, world, s=rng.uniform(0, 10)), sample_lighting(rng),
                 frame_seed=int(rng.integers(2**31)), blur=float(rng.uniform(0, 0.8)),
                 sensor_noise=float(rng.uniform(0.5, 4)))


# -------------------------------------------------------------------------------------------- rendering

class _Canvas:
    """Material ids, shading and (painted alongside) the lists that map materials to colours and classes."""

    def __init__(self, width, height):
        self.mat = np.zeros((height, width), np.uint16)
        self.shade = np.ones((height, width), np.float32)
        self.colors, self.classes, self.textures = [], [], []
        self.sky = self.material((0, 0, 0), SKY, (0, 0, 0))

    def material(self, bgr, cls, texture=(4.0, 3.0, 6.0)):
        """A new material: BGR colour, train id, texture amplitudes (fine, medium, coarse noise)."""
        self.colors.append(bgr)
        self.classes.append(cls)
        self.textures.append(texture)
        return len(self.colors) - 1

    def fill(self, polygons, material=None, shade=1.0):
        """Paints polygons (float Nx2 pixel arrays, or one KxNx2 array) with a material and a shade."""
        if isinstance(polygons, np.ndarray):
            polygons = list((polygons * _ONE + 0.5).astype(np.int32))
        else:
            polygons = [(p * _ONE + 0.5).astype(np.int32) for p in polygons]
        if material is not None:
            cv2.fillPoly(self.mat, polygons, int(material), cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.shade, polygons, float(shade), cv2.LINE_8, _SHIFT)


class _View:
    """The projection of one frame: road-relative (x lateral, y up, s along) to pixels."""

    def __init__(self, scene, width, height):
        cam = scene.camera
        self.width, self.height = width, height
        self.f = cam.focal * width
        self.cx = width / 2
        self.horizon = cam.horizon * height
        self.cam = cam
        self.k = scene.world.curvature_at(cam.s)
        self.half_k = 0.5 * self.k
        self.cos, self.sin = math.cos(cam.yaw), math.sin(cam.yaw)

    def project(self, x, y, s):
        """Pixel coordinates (Nx2) of points; callers keep them NEAR metres ahead or more."""
        x, y, s = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                      np.asarray(s, np.float64))
        d = s - self.cam.s
        xc = x + self.half_k * d * d - self.cam.x
        z = xc * self.sin + d * self.cos
        np.maximum(z, 0.2, out=z)
        z = self.f / z
        out = np.empty(x.shape + (2,))
        out[..., 0] = (xc * self.cos - d * self.sin) * z + self.cx
        out[..., 1] = (self.cam.height - y) * z + self.horizon
        return out

    def visible(self, points):
        return (points[:, 0].max() >= 0 and points[:, 0].min() < self.width and points[:, 1].max() >= 0
                and points[:, 1].min() < self.height)


@lru_cache(maxsize=2 * _NOISE_POOL)
def _noise(seed, width, height):
    """Fine, medium and coarse noise fields (unit std), fixed per texture seed so a drive doesn't shimmer.

    Scenes share a small pool of fields: drawing fresh full-size noise would double the cost of a frame.
    """
    rng = np.random.default_rng(seed)
    fine = rng.standard_normal((height, width), np.float32)
    fields = [fine]
    for factor in (4, 24):
        small = rng.standard_normal((height // factor + 2, width // factor + 2), np.float32)
        field = cv2.resize(small, (width + 2 * factor, height + 2 * factor), interpolation=cv2.INTER_CUBIC)
        field = field[factor:factor + height, factor:factor + width]
        fields.append(field / max(float(field.std()), 1e-6))
    for field in fields:
        field.setflags(write=False)
    return tuple(fields)


def _paint_ground(canvas, view, scene, mats):
    world, light = scene.world, scene.lighting
    top = max(int(math.floor(view.horizon + 0.5)), 0)
    if top >= view.height:
        return
    rows = np.arange(top, view.height, dtype=np.float32)[:, None] + 0.5
    cols = np.arange(view.width, dtype=np.float32)[None, :] + 0.5
    depth = (view.f * view.cam.height) / np.maximum(rows - view.horizon, 1e-3)
    xr = (cols - view.cx) * (depth / view.f)
    d = depth * view.cos - xr * view.sin
    x = xr * view.cos + depth * view.sin - view.half_k * d * d + view.cam.x
    s = d + view.cam.s
    side = (x > 0).view(np.uint8)
    a = np.abs(x)
    zone = np.zeros(a.shape, np.uint8)
    for bounds in zip(*[_bounds(world, k) for k in (0, 1)]):
        zone += a > np.take(np.float32(bounds), side)
    back = [mats["back"][k] for k in (0, 1)]
    lut = np.array([[mats[m] for m in ("road", "curb", "sidewalk", "terrain")] + [back[k]] for k in (0, 1)],
                   np.uint16)
    mat = lut[side, zone]
    near = int(np.searchsorted(-depth[:, 0], -18.0))
    ss = s[near:]
    joints = ((a[near:] % 1.2) < 0.06) | ((ss % 1.2) < 0.06)
    mat[near:][joints & (zone[near:] == 2)] = mats["joint"]
    on_road = zone == 0
    half = world.lanes * world.lane_width / 2
    q = (x + half) * (1 / world.lane_width)
    _paint_markings(mat, q, x, s, on_road, world, mats)
    shade = canvas.shade[top:]
    lane_pos = np.abs(q - np.floor(q) - 0.5) * world.lane_width
    shade[(np.abs(lane_pos - 0.8) < 0.3) & on_road] = 0.92
    if light.sun and light.shadow:
        shade *= _facade_shadows(x, s, world, light)
    canvas.mat[top:] = mat


def _bounds(world, k):
    """Outward distances where road, curb, sidewalk and grass end on side k (0 left, 1 right)."""
    edge = world.edges[k]
    walk = edge + world.curb + world.sidewalks[k]
    return edge, edge + world.curb, walk, walk + world.grass[k]


def _paint_markings(mat, q, x, s, on_road, world, mats):
    line = np.round(q)
    dist = np.abs(q - line) * world.lane_width
    width = 0.15
    dashed = (s % world.dash[1]) < world.dash[0]
    inner = (line > 0) & (line < world.lanes)
    centre = (line == world.oncoming) & inner
    thin = dist < width / 2
    marks = inner & ~centre & thin & dashed
    edge_line = ((line == 0) | (line == world.lanes)) & thin
    mat[on_road & (marks | edge_line)] = mats["white"]
    if world.oncoming:
        style = world.centre_line
        if style == "double":
            centre_mark = centre & (np.abs(dist - 0.12) < width / 2)
        else:
            centre_mark = centre & thin & (dashed if style == "dashed" else True)
        mat[on_road & centre_mark] = mats["yellow" if style == "double" else "white"]
    if world.crosswalk is not None:
        half = world.lanes * world.lane_width / 2
        zebra = (np.abs(s - world.crosswalk - 2) < 2) & (x % 1.0 < 0.5) & (np.abs(x) < half - 0.3)
        mat[on_road & zebra] = mats["white"]


def _facade_shadows(x, s, world, light):
    """Multiplier of the ground under the shadows the sun-side facades cast across the road."""
    fronts = sorted((f for f in world.facades if f.side == light.sun), key=lambda f: f.s0)
    if not fronts:
        return 1.0
    s0 = np.array([f.s0 for f in fronts])
    s1 = np.array([f.s1 for f in fronts])
    offset = np.array([f.offset for f in fronts])
    reach = np.array([f.height for f in fronts]) * light.shadow_length
    i = np.clip(np.searchsorted(s0, s, "right") - 1, 0, len(fronts) - 1)
    inside = (s >= s0[i]) & (s < s1[i])
    gap = offset[i] - light.sun * x
    return np.where(inside & (gap >= 0) & (gap < reach[i]), 1 - light.shadow, 1.0).astype(np.float32)


def _paint_skyline(canvas, view, world):
    if world.skyline is None:
        return
    cols = np.arange(0, view.width + 8, 8, dtype=np.float64)
    bearing = np.arctan((cols - view.cx) / view.f) + view.cam.yaw
    index = np.clip(((bearing + 1.6) / 3.2 * len(world.skyline)).astype(int), 0, len(world.skyline) - 1)
    tops = view.horizon - view.f * np.tan(world.skyline[index])
    base = view.horizon + 0.5
    outline = np.concatenate([np.stack([cols, tops], 1), [[cols[-1], base], [cols[0], base]]])
    canvas.fill([outline], canvas.material(world.colors["skyline"], BUILDING, (2, 2, 3)))


def _draw_facade(canvas, view, f, light):
    lo = max(f.s0, view.cam.s + NEAR)
    if lo >= f.s1:
        return
    x = f.side * f.offset
    side_shade = 1.0 if not light.sun else (0.7 if f.side == light.sun else 1.15)
    if f.kind == "vegetation":
        mat = canvas.material(f.color, VEGETATION, (6, 18, 10))
        along = np.linspace(f.s0, f.s1, len(f.top))
        keep = along >= lo
        ss = np.concatenate([[lo], along[keep]])
        top = np.concatenate([[np.interp(lo, along, f.top)], f.top[keep]])
        outline = view.project(np.full(len(ss) + 2, x), np.concatenate([[0, 0], top[::-1]]),
                               np.concatenate([[lo, f.s1], ss[::-1]]))
        if view.visible(outline):
            canvas.fill([outline], mat, side_shade)
        return
    mat = canvas.material(f.color, BUILDING, (4, 3, 8))
    wall = view.project([x, x, x, x], [0, f.height, f.height, 0], [lo, lo, f.s1, f.s1])
    if view.visible(wall):
        canvas.fill([wall], mat, side_shade)
        if f.windows:
            _draw_windows(canvas, view, f, lo, side_shade)
    if f.s0 >= view.cam.s + NEAR:
        depth = f.side * 15.0
        front = view.project([x, x + depth, x + depth, x], [0, 0, f.height, f.height], [f.s0] * 4)
        if view.visible(front):
            canvas.fill([front], mat, 0.95)


def _draw_windows(canvas, view, f, lo, shade):
    floor, spacing, width, height, glass = f.windows
    columns = np.arange(f.s0 + spacing / 2, f.s1 - width, spacing)
    floors = np.arange(1.0 + (floor - height) / 2, f.height - height, floor)
    if not len(columns) or not len(floors):
        return
    s, y = np.meshgrid(columns[columns >= lo], floors)
    s, y = s.ravel(), y.ravel()
    if not len(s):
        return
    x = np.full((len(s), 1), f.side * (f.offset - 0.01))
    corners = view.project(x, y[:, None] + [0, height, height, 0], s[:, None] + [0, 0, width, width])
    corners = corners[np.abs(corners[:, 2] - corners[:, 0]).max(1) > 1.0]
    if len(corners):
        canvas.fill(corners, canvas.material(glass, BUILDING, (2, 2, 4)), shade * 0.9)


class _Parts:
    """3-D polygons of one object, projected together (one numpy call instead of one per polygon)."""

    def __init__(self):
        self.x, self.y, self.s, self.ends = [], [], [], []

    def add(self, x, y, s):
        self.x += x
        self.y += y
        self.s += s
        self.ends.append(len(self.x))
        return len(self.ends) - 1

    def box(self, x0, x1, y0, y1, s0, s1):
        return self.add([x0, x1, x1, x0] * 2, [y0, y0, y1, y1] * 2, [s0] * 4 + [s1] * 4)

    def quad(self, xs, ys, ss):
        return self.add(list(xs), list(ys), list(ss))

    def billboard(self, x, s, offsets):
        """A polygon in the plane facing the camera at (x, s): points (lateral offset, height)."""
        return self.add([x + o[0] for o in offsets], [o[1] for o in offsets], [s] * len(offsets))

    def project(self, view):
        points = view.project(np.array(self.x), np.array(self.y), np.array(self.s))
        return [points[a:b] for a, b in zip([0] + self.ends[:-1], self.ends)]


def _hull(points):
    return cv2.convexHull(points.astype(np.float32))[:, 0].astype(np.float64)


_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 12, endpoint=False))], 1)


def _draw_car(canvas, view, car, time, light):
    s = car.s + car.speed * time
    near_end, far_end = s - car.length / 2, s + car.length / 2
    lo = max(near_end, view.cam.s + NEAR)
    if lo >= far_end - 0.3:
        return
    half = car.width / 2
    x0, x1 = car.x - half, car.x + half
    belt = car.height * (0.55 if car.height < 1.6 else 0.6)
    hood, trunk = car.length * car.hood, car.length * 0.12
    c_near, c_far = (near_end + trunk, far_end - hood) if car.facing > 0 else (near_end + hood, far_end - trunk)
    c_near = max(c_near, lo)
    xc = car.x + view.half_k * (s - view.cam.s) ** 2 - view.cam.x
    side = -1 if xc > half else (1 if xc < -half else 0)
    parts = _Parts()
    shadow = parts.quad([x0 - 0.1, x1 + 0.1, x1 + 0.1, x0 - 0.1], [0] * 4, [lo, lo, far_end + 0.3, far_end + 0.3])
    lower = parts.box(x0, x1, 0.25, belt, lo, far_end)
    cabin = parts.box(x0 + 0.12, x1 - 0.12, belt, car.height, c_near, c_far) if c_near < c_far else None
    roof = parts.quad([x0 + 0.15, x1 - 0.15, x1 - 0.15, x0 + 0.15], [car.height] * 4,
                      [c_near, c_near, c_far, c_far])
    detail = view.f * car.height / (lo - view.cam.s) > 12
    wheels, pillar, end = [], None, near_end >= lo and detail
    if side and detail:
        px = car.x + side * half
        wheels = [parts.add([px] * 12, list(0.34 + 0.34 * _CIRCLE[:, 1]), list(axle + 0.34 * _CIRCLE[:, 0]))
                  for axle in (near_end + 0.85, far_end - 0.85) if axle - 0.35 > lo]
        if cabin is not None:
            px, mid = car.x + side * (half - 0.11), (c_near + c_far) / 2
            w = 0.03 * (c_far - c_near)
            pillar = parts.quad([px] * 4, [belt, car.height, car.height, belt],
                                [mid - w, mid - w, mid + w, mid + w])
    if end:
        face = parts.quad([x0, x1, x1, x0], [0.25, 0.25, belt, belt], [near_end] * 4)
        tyres = [parts.quad([car.x + k * (half - 0.05), car.x + k * (half - 0.3)] * 2, [0, 0, 0.3, 0.3],
                            [near_end + 0.3] * 4) for k in (-1, 1)]
        lamps = [parts.quad([car.x + k * (half - 0.08), car.x + k * (half - 0.4)] * 2,
                            [belt - 0.25, belt - 0.25, belt - 0.1, belt - 0.1], [near_end - 0.01] * 4)
                 for k in (-1, 1)]
        plate = parts.quad([car.x - 0.25, car.x + 0.25] * 2, [0.4, 0.4, 0.52, 0.52], [near_end - 0.01] * 4)
        window = parts.quad([x0 + 0.25, x1 - 0.25, x1 - 0.2, x0 + 0.2],
                            [car.height - 0.08, car.height - 0.08, belt + 0.06, belt + 0.06], [c_near] * 4)
    p = parts.project(view)
    outline = [_hull(p[lower])] + ([_hull(p[cabin])] if cabin is not None else [])
    if not any(view.visible(o) for o in outline):
        return
    if light.shadow:
        canvas.fill([p[shadow]], None, 1 - 0.6 * light.shadow)
    body = canvas.material(car.color, CAR, (2, 1, 2))
    glass = canvas.material(car.glass, CAR, (1, 1, 2))
    canvas.fill(outline[:1], body, 1.0)
    if cabin is not None:
        canvas.fill(outline[1:], glass, 1.0)
        canvas.fill([p[roof]], body, 1.15)
    if pillar is not None:
        canvas.fill([p[pillar]], body, 0.9)
    dark = canvas.material((25, 25, 25), CAR, (2, 1, 1)) if wheels or end else None
    if wheels:
        canvas.fill([p[w] for w in wheels], dark, 1.0)
    if end:
        canvas.fill([p[face]], body, 0.85)
        canvas.fill([p[t][[0, 1, 3, 2]] for t in tyres], dark, 1.0)
        lamp = (40, 40, 200) if car.facing > 0 else (210, 230, 235)
        canvas.fill([p[k][[0, 1, 3, 2]] for k in lamps], canvas.material(lamp, CAR, (1, 1, 1)), 1.0)
        canvas.fill([p[plate][[0, 1, 3, 2]]], canvas.material((220, 220, 220), CAR, (1, 1, 1)), 1.0)
        if cabin is not None and c_near > lo:
            canvas.fill([p[window]], glass, 0.8)


def _draw_person(canvas, view, person, time):
    s = person.s + person.speed * time
    if s - view.cam.s < NEAR or view.f * person.height / (s - view.cam.s) < 3:
        return
    h, x = person.height, person.x
    swing = 0.18 * h * math.sin(person.phase + 2.2 * time * abs(person.speed)) if person.speed else 0.0
    hip, shoulder, r = 0.52 * h, 0.8 * h, 0.065 * h
    parts = _Parts()
    legs = [parts.billboard(x, s, [(k * 0.04, hip), (k * 0.17, hip), (k * 0.1 + sw + 0.06, 0),
                                   (k * 0.1 + sw - 0.07, 0)]) for k, sw in ((-1, swing * 0.5), (1, -swing * 0.5))]
    arms = [parts.billboard(x, s, [(k * 0.17, shoulder), (k * 0.25, shoulder - 0.02), (k * 0.22 + sw, 0.5 * h),
                                   (k * 0.15 + sw, 0.5 * h)]) for k, sw in ((-1, -swing * 0.3), (1, swing * 0.3))]
    torso = parts.billboard(x, s, [(-0.16, hip - 0.03), (0.16, hip - 0.03), (0.2, shoulder),
                                   (0.08, shoulder + 0.04), (-0.08, shoulder + 0.04), (-0.2, shoulder)])
    head = parts.billboard(x, s, list(zip(r * 0.85 * _CIRCLE[:, 0], 0.935 * h + r * _CIRCLE[:, 1])))
    p = parts.project(view)
    if not any(view.visible(p[i]) for i in legs + [torso, head]):
        return
    canvas.fill([p[i] for i in legs], canvas.material(person.trousers, PERSON, (2, 2, 2)), 1.0)
    canvas.fill([p[i] for i in arms + [torso]], canvas.material(person.shirt, PERSON, (2, 2, 2)), 1.0)
    canvas.fill([p[head]], canvas.material(person.skin, PERSON, (1, 1, 1)), 1.0)


def _draw_pole(canvas, view, pole):
    if pole.s - view.cam.s < NEAR:
        return
    w = pole.width / 2
    parts = _Parts()
    shaft = parts.billboard(pole.x, pole.s, [(-w, 0), (w, 0), (w, pole.height), (-w, pole.height)])
    pieces = [shaft]
    if pole.arm:
        pieces.append(parts.billboard(pole.x, pole.s, [(0, pole.height - 0.2), (pole.arm, pole.height - 0.05),
                                                       (pole.arm, pole.height + 0.08), (0, pole.height - 0.05)]))
    if pole.sign:
        shape, color, inner, radius, height = pole.sign
        centre = pole.x - np.sign(pole.x) * (w + radius * 0.9)
        outline = _sign_outline(shape, radius)
        plate = parts.billboard(centre, pole.s - 0.02, outline + [0, height])
        symbol = parts.billboard(centre, pole.s - 0.03, outline * 0.6 + [0, height])
    p = parts.project(view)
    if not any(view.visible(p[i]) for i in range(len(p))):
        return
    canvas.fill([p[i] for i in pieces], canvas.material(pole.color, POLE, (2, 1, 2)), 1.0)
    if pole.sign:
        canvas.fill([p[plate]], canvas.material(color, SIGN, (2, 1, 1)), 1.0)
        canvas.fill([p[symbol]], canvas.material(inner, SIGN, (2, 1, 1)), 1.0)


def _sign_outline(shape, r):
    n = {"circle": 16, "triangle": 3, "square": 4, "diamond": 4}[shape]
    start = {"circle": 0, "triangle": np.pi / 2, "square": np.pi / 4, "diamond": 0}[shape]
    angles = start + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([r * np.cos(angles), r * np.sin(angles)], 1)


def _draw_tree(canvas, view, tree):
    if tree.s - view.cam.s < NEAR:
        return
    r = tree.radius
    angles = np.linspace(0, 2 * np.pi, len(tree.crown), endpoint=False)
    parts = _Parts()
    top = tree.trunk + r
    trunk = parts.billboard(tree.x, tree.s, [(-0.15, 0), (0.15, 0), (0.12, top), (-0.12, top)])
    outline = zip(r * tree.crown * np.cos(angles), tree.trunk + r * 0.8 + r * tree.crown * np.sin(angles))
    crown = parts.billboard(tree.x, tree.s - 0.01, list(outline))
    p = parts.project(view)
    if not (view.visible(p[trunk]) or view.visible(p[crown])):
        return
    canvas.fill([p[trunk]], canvas.material(tree.bark, VEGETATION, (3, 2, 2)), 1.0)
    canvas.fill([p[crown]], canvas.material(tree.color, VEGETATION, (8, 22, 8)), 1.0)


def _drawables(scene, view):
    """(distance, draw) of everything standing on the ground, to be painted far to near."""
    world, cam, t, light = scene.world, scene.camera, scene.time, scene.lighting
    lo, hi = cam.s - 10, cam.s + FAR
    items = []
    for f in world.facades:
        if f.s1 > cam.s + NEAR and f.s0 < hi:
            items.append((max(f.s0, cam.s), lambda c, f=f: _draw_facade(c, view, f, light)))
    for car in world.cars:
        s = car.s + car.speed * t
        if lo < s < hi:
            items.append((s - car.length / 2, lambda c, car=car: _draw_car(c, view, car, t, light)))
    for p in world.people:
        s = p.s + p.speed * t
        if cam.s + NEAR < s < hi:
            items.append((s, lambda c, p=p: _draw_person(c, view, p, t)))
    for pole in world.poles:
        if cam.s + NEAR < pole.s < hi:
            items.append((pole.s, lambda c, pole=pole: _draw_pole(c, view, pole)))
    for tree in world.trees:
        if cam.s + NEAR < tree.s < hi:
            items.append((tree.s, lambda c, tree=tree: _draw_tree(c, view, tree)))
    items.sort(key=lambda item: -item[0])
    return [draw for _, draw in items]


def _sky(view, world, noise, rows):
    """The sky's colours in the top ``rows`` rows: a gradient from the horizon up, with clouds."""
    horizon, zenith, cover = world.sky
    t = np.clip((view.horizon - np.arange(rows, dtype=np.float32)) / max(view.horizon, 1.0), 0, 1) ** 0.7
    t = t[:, None, None]
    sky = np.float32(horizon) * (1 - t) + np.float32(zenith) * t
    sky = np.broadcast_to(sky, (rows, view.width, 3))
    if cover:
        clouds = np.clip((noise[2][:rows] - (1.2 - 2 * cover)) * 0.8, 0, 1)[..., None] * (1 - 0.3 * t)
        sky = sky * (1 - clouds) + np.float32((228, 228, 232)) * clouds
    return sky


@lru_cache(maxsize=4)
def _radius2(width, height):
    yy, xx = np.ogrid[-1:1:height * 1j, -1:1:width * 1j]
    return (0.5 * (xx * xx + yy * yy)).astype(np.float32)


def _compose(canvas, view, scene):
    light = scene.lighting
    noise = _noise(scene.world.texture_seed % _NOISE_POOL, view.width, view.height)
    mat = canvas.mat
    tint = np.float32(light.tint) * np.float32(light.contrast)
    image = np.take(np.array(canvas.colors, np.float32) * tint, mat, axis=0)
    rows = min(max(int(math.ceil(view.horizon + 1)), 0), view.height)
    sky = mat[:rows] == canvas.sky
    if sky.any():
        image[:rows][sky] = _sky(view, scene.world, noise, rows)[sky] * tint
    if scene.texture:
        amp = np.array(canvas.textures, np.float32).T * np.float32(light.contrast)
        texture = noise[0] * np.take(amp[0], mat)
        texture += noise[1] * np.take(amp[1], mat)
        texture += noise[2] * np.take(amp[2], mat)
        image += texture[..., None]
    shade = canvas.shade * np.float32(light.gain)
    if light.vignette:
        shade *= 1 - np.float32(light.vignette) * _radius2(view.width, view.height)
    image *= shade[..., None]
    grain = np.full(mat.shape, 110 * (1 - light.contrast), np.float32)
    if scene.sensor_noise:
        # a randomly shifted noise field of the pool: as random per frame as fresh noise, at a tenth the cost
        shift = np.random.default_rng(scene.frame_seed).integers(0, mat.shape, 2)
        pool = _noise((scene.world.texture_seed + 1) % _NOISE_POOL, view.width, view.height)[0]
        grain += np.roll(pool, tuple(shift), (0, 1)) * np.float32(scene.sensor_noise)
    image += grain[..., None]
    np.clip(image, 0, 255, out=image)
    image = image.astype(np.uint8)
    if light.gamma != 1:
        lut = (255 * (np.arange(256) / 255.0) ** light.gamma).round().astype(np.uint8)
        image = cv2.LUT(image, lut)
    if scene.blur > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), scene.blur)
    return image


def render_scene(scene, size=DEFAULT_SIZE):
    """Draws a scene (or a random one from an ``np.random.Generator`` or seed) at ``size`` = (width, height).

    :returns: (HxWx3 BGR uint8 image, HxW uint8 Cityscapes train ids)
    """
    if not isinstance(scene, Scene):
        scene = sample_scene(scene)
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise DaainError(f"size {size}: expected positive (width, height)")
    view = _View(scene, width, height)
    canvas = _Canvas(width, height)
    world = scene.world
    mats = {name: canvas.material(world.colors[name], cls, tex) for name, cls, tex in (
        ("road", ROAD, (5, 3, 6)), ("white", ROAD, (4, 2, 3)), ("yellow", ROAD, (4, 2, 3)),
        ("curb", SIDEWALK, (4, 2, 4)), ("sidewalk", SIDEWALK, (5, 3, 6)), ("terrain", TERRAIN, (8, 10, 10)))}
    mats["joint"] = canvas.material(tuple(0.75 * c for c in world.colors["sidewalk"]), SIDEWALK, (3, 2, 3))
    mats["back"] = tuple(mats["terrain"] if b == TERRAIN else mats["sidewalk"] for b in world.back)
    _paint_ground(canvas, view, scene, mats)
    _paint_skyline(canvas, view, world)
    for draw in _drawables(scene, view):
        draw(canvas)
    image = _compose(canvas, view, scene)
    labels = np.array(canvas.classes, np.uint8)[canvas.mat]
    return image, labels


def random_scene(seed, size=DEFAULT_SIZE):
    """A random street scene for ``seed``: (BGR image, train ids)."""
    return render_scene(sample_scene(np.random.default_rng(seed)), size)


def _drift(rng, keys, period):
    """A smooth random walk: cosine interpolation between keyframes ``period`` frames apart."""
    def at(i):
        k, frac = divmod(i / period, 1.0)
        w = 0.5 - 0.5 * math.cos(math.pi * frac)
        return (1 - w) * keys[int(k)] + w * keys[int(k) + 1]
    return at


def drive(seed, n_frames, size=DEFAULT_SIZE):
    """A drive down one street at ``FPS``: yields (image, labels) with smoothly moving camera and traffic.

    Objects approach as the camera advances, the camera sways in its lane, lighting drifts slowly.
    """
    rng = np.random.default_rng(seed)
    speed = rng.uniform(6, 13)
    duration = n_frames / FPS
    world = sample_world(rng, speed * duration + FAR + 60, ego_speed=speed, duration=duration)
    cam = sample_camera(rng, world)
    base = sample_lighting(rng)
    period = 90
    keys = int(n_frames / period) + 2
    gain = _drift(rng, np.clip(base.gain + np.cumsum(rng.uniform(-0.12, 0.12, keys)), 0.5, 1.3), period)
    shadow = _drift(rng, np.clip(base.shadow + np.cumsum(rng.uniform(-0.1, 0.1, keys)), 0, 0.6) if base.sun
                    else np.zeros(keys), period)
    tint = [_drift(rng, base.tint[c] + np.cumsum(rng.uniform(-0.03, 0.03, keys)), period) for c in range(3)]
    sway = rng.uniform(0, 6.3, 3)
    for i in range(n_frames):
        t = i / FPS
        camera = replace(cam, s=speed * t, x=cam.x + 0.3 * math.sin(0.4 * t + sway[0]),
                         yaw=cam.yaw + 0.02 * math.sin(0.3 * t + sway[1]),
                         horizon=cam.horizon + 0.006 * math.sin(1.7 * t + sway[2]))
        light = replace(base, gain=gain(i), shadow=shadow(i), tint=tuple(f(i) for f in tint))
        yield render_scene(Scene(world, camera, light, time=t, frame_seed=int(rng.integers(2**31)),
                                 sensor_noise=1.5, blur=0.4), size)
