"""Recipe constants: a changed preset value, augmentation parameter or normalisation rule fails a test here.

Three kinds of checks:

1. Golden files. `tests/golden/presets.json` holds every preset's resolved configuration (name -> the
   `TrainConfig.to_dict()` of `presets.resolve(name)`) and `tests/golden/models.json` the model registry's input
   metadata (name -> input_size, mean, std, eval_resize, pretrained). The tests compare the code against them
   and name the preset (or model) and key that differ. After a deliberate, reviewed change, rewrite them with

       CIFAR_LAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_recipes.py

   (the golden tests then report "skipped: rewrote ...") and review `git diff tests/golden` before committing.

2. Augmentation policies measured on known inputs over many draws, called as the loader calls them
   (`augment.build(name)` with default arguments), so a changed default or a changed literal in a body is
   caught: crop padding, flip probability, Cutout size and probability, the NaiveNet policy's rotation,
   shear, crop and flip, colour-jitter factors, the ImageNet pipeline's RandomResizedCrop box, ColorJitter
   strength and eval resize. Every draw comes from a seeded generator, so the tests are deterministic; the
   tolerances are stated in standard errors (SE) of the statistic at the sample size used, and each one
   leaves a wide margin against the neighbouring values a typo would give (padding 2 or 6, p 0.4 or 0.6,
   10 degrees versus 8 or 12, ...).

3. Normalisation statistics: `channel_stats` is the per-channel mean and sample (Bessel-corrected) standard
   deviation over all pixels of the training split, checked on a split written in the on-disk CIFAR layout
   and read back by the real parser.
"""
from __future__ import annotations

import inspect
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cifar_lab import models, presets
from cifar_lab.config import TrainConfig
from cifar_lab.data import augment, channel_stats, cifar, jpeg_pipeline, reference, synthetic
from cifar_lab.data.cifar_bundle import cifar_bundle

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("CIFAR_LAB_UPDATE_GOLDEN") == "1"
REPO = Path(__file__).resolve().parent.parent


# --- 1. golden files ------------------------------------------------------------------------------------

def _flatten(value, prefix: str = "") -> dict:
    """{"ast": {"target": 0.1}} -> {"ast.target": 0.1}, so a diff names the dotted config key."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
    return flat


def _golden_diff(golden: dict, current: dict, kind: str) -> list[str]:
    lines = []
    for name in sorted(set(golden) | set(current)):
        if name not in golden:
            lines.append(f"  {kind} '{name}' is new: it is not in the golden file")
            continue
        if name not in current:
            lines.append(f"  {kind} '{name}' is gone: the golden file still lists it")
            continue
        old, new = _flatten(golden[name]), _flatten(current[name])
        for key in sorted(set(old) | set(new)):
            if key not in new:
                lines.append(f"  {name}: {key}: golden {old[key]!r}, now missing")
            elif key not in old:
                lines.append(f"  {name}: {key}: not in the golden file, now {new[key]!r}")
            elif old[key] != new[key]:
                lines.append(f"  {name}: {key}: golden {old[key]!r}, now {new[key]!r}")
    return lines


def _check_golden(filename: str, current: dict, kind: str) -> None:
    path = GOLDEN / filename
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pytest.skip(f"rewrote {path}; review `git diff {path}` before committing")
    assert path.is_file(), f"{path} is missing; create it with CIFAR_LAB_UPDATE_GOLDEN=1 and review it"
    golden = json.loads(path.read_text())
    current = json.loads(text)  # the same JSON round trip as the file (tuples -> lists, 5e-4 -> 0.0005)
    diff = _golden_diff(golden, current, kind)
    assert not diff, (f"{filename} and the code disagree ({len(diff)} difference(s)); if the change is "
                      f"intended, rewrite the file with CIFAR_LAB_UPDATE_GOLDEN=1 and review the diff:\n"
                      + "\n".join(diff))


def test_every_preset_resolves_to_its_reviewed_golden_configuration():
    # A changed lr, epoch count, batch size, ... of a preset, a changed TrainConfig default that a preset
    # inherits, and a preset added or removed all show up here, by preset and dotted key.
    current = {name: presets.resolve(name).to_dict() for name in presets.names()}
    _check_golden("presets.json", current, "preset")


def test_model_registry_input_metadata_matches_the_golden_file():
    # Resolution, normalisation (torchvision's ImageNet statistics for the pretrained models), eval resize
    # and the weight versions each model can start from.
    current = {name: {"input_size": spec.input_size, "mean": spec.mean, "std": spec.std,
                      "eval_resize": spec.eval_resize, "pretrained": list(spec.pretrained)}
               for name, spec in models.MODELS.items()}
    _check_golden("models.json", current, "model")


def test_golden_diff_names_the_preset_and_key_and_added_or_removed_presets():
    golden = {"a": {"lr": 0.1, "ast": {"target": 0.1}}, "gone": {"lr": 1.0}}
    current = {"a": {"lr": 0.2, "ast": {"target": 0.1}}, "new": {"lr": 1.0}}
    diff = _golden_diff(golden, current, "preset")
    assert diff == ["  a: lr: golden 0.1, now 0.2",
                    "  preset 'gone' is gone: the golden file still lists it",
                    "  preset 'new' is new: it is not in the golden file"]
    assert _golden_diff(golden, {**current, "a": {"lr": 0.1, "ast": {"target": 0.2}}}, "preset")[0] == \
        "  a: ast.target: golden 0.1, now 0.2"


# --- 2a. the policies call their building blocks with the documented parameters -------------------------

# The documented constants of each policy, by building block (module docstring of cifar_lab.data.augment).
CROP = {"padding": 4, "flip": True}
CUTOUT = {"size": 16, "p": 0.5}
AFFINE = {"degrees": 10.0, "shear": 5.0}
JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "max_value": 255.0}
DOCUMENTED = {
    "none": {},
    "crop_flip": {"random_crop_flip": CROP},
    "crop_flip_cutout": {"random_crop_flip": CROP, "cutout": CUTOUT},
    "naivenet": {"random_crop_flip": CROP, "random_affine": AFFINE, "color_jitter": JITTER},
}


def test_building_blocks_default_to_the_documented_recipe_constants():
    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    assert defaults(augment.random_crop_flip) == CROP
    assert defaults(augment.cutout) == {**CUTOUT, "fill": None}
    assert defaults(augment.random_affine) == AFFINE
    assert defaults(augment.color_jitter) == JITTER
    assert defaults(augment.CropFlipCutout) == {**CUTOUT, "fill": None}
    assert defaults(jpeg_pipeline.random_resized_box) == {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3)}
    assert defaults(reference.make_transform) == {"padding": 4, "input_size": 32}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_policy_applies_its_building_blocks_with_the_documented_parameters(name, monkeypatch):
    # Spies record the effective arguments (explicit or default) each building block is called with, so a
    # policy that passes its own value (naivenet calling random_affine(..., degrees=8)) is caught even
    # though the function's default is unchanged. The statistical tests below check the bodies.
    calls: dict[str, dict] = {}

    def spy(fn):
        signature = inspect.signature(fn)

        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            calls[fn.__name__] = {k: v for k, v in bound.arguments.items()
                                  if k not in ("images", "x", "generator", "fill")}
            return fn(*args, **kwargs)
        return wrapper

    for block in ("random_crop_flip", "cutout", "random_affine", "color_jitter"):
        monkeypatch.setattr(augment, block, spy(getattr(augment, block)))
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = augment.build(name)(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert calls == DOCUMENTED[name]
    if name == "none":
        assert torch.equal(out, images)


# --- 2b. crop and flip, measured ------------------------------------------------------------------------

def _crop_flip_shifts(policy, n: int, seed: int):
    """Push n copies of a black 32x32 image with two marked pixels - red at (16, 16), green at (16, 17) -
    through `policy`. Returns (dy, dx, flipped, kept): the vertical and horizontal shift of the marked
    content in pixels (the horizontal one measured from the mirrored position when flipped), whether the
    image was flipped (green left of red), and which images still show both marks (Cutout may hide them)."""
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    images[:, 0, 16, 16] = 255
    images[:, 1, 16, 17] = 255
    out = policy(images, torch.Generator().manual_seed(seed))
    kept = (out[:, 0] == 255).flatten(1).any(1) & (out[:, 1] == 255).flatten(1).any(1)
    red = (out[:, 0] == 255).flatten(1).float().argmax(1)
    green = (out[:, 1] == 255).flatten(1).float().argmax(1)
    red_row, red_col, green_col = red // 32, red % 32, green % 32
    flipped = green_col < red_col
    dy = red_row - 16
    dx = torch.where(flipped, red_col - 15, red_col - 16)  # mirrored: column c lands at 31 - c
    return dy[kept], dx[kept], flipped[kept], kept


@pytest.mark.parametrize("name", ["crop_flip", "crop_flip_cutout"])
def test_random_crop_shifts_by_every_offset_up_to_exactly_4_pixels(name):
    dy, dx, _, kept = _crop_flip_shifts(augment.build(name), 4000, seed=0)
    assert kept.float().mean() > 0.5  # Cutout hides a mark in under a third of the images
    for axis, shift in (("vertical", dy), ("horizontal", dx)):
        counts = torch.bincount(shift + 8, minlength=17)
        offsets = [k - 8 for k in range(17) if counts[k]]
        # pad 4: shifts are exactly -4..4 (pad 2 would stop at 2, pad 6 would reach 6)
        assert offsets == list(range(-4, 5)), f"{axis} shifts seen: {offsets}"
        # ...and uniform: each of the 9 has probability 1/9; 5 SE of a binomial count at n >= 2000
        n = len(shift)
        expected, se = n / 9, math.sqrt(n * (1 / 9) * (8 / 9))
        assert ((counts[4:13] - expected).abs() < 5 * se).all(), counts[4:13].tolist()


@pytest.mark.parametrize("name", ["crop_flip", "crop_flip_cutout"])
def test_horizontal_flip_probability_is_one_half(name):
    _, _, flipped, _ = _crop_flip_shifts(augment.build(name), 4000, seed=1)
    rate = flipped.float().mean().item()
    # n >= 2500 kept images: SE <= 0.01; 0.035 is 3.5 SE, and p = 0.4 or 0.6 would be 10 SE away
    assert abs(rate - 0.5) < 0.035, rate


def test_torchvision_reference_route_crops_with_pad_4_and_flips_with_p_one_half():
    steps = reference.make_transform((0.5,) * 3, (0.5,) * 3, train=True).transforms
    crop, flip = steps[0], steps[1]
    assert crop.size == (32, 32) and crop.padding == 4
    assert flip.p == 0.5


# --- 2c. Cutout, measured -------------------------------------------------------------------------------

def test_cutout_policy_cuts_one_16x16_hole_with_probability_one_half_anywhere_inside_the_image():
    # Flat (200, 200, 200) images; the crop pads with 0; holes are filled with the loader's mean, which
    # build() is given on the 0-1 scale: (0.2, 0.4, 0.6) -> (51, 102, 153), a colour nothing else has.
    n = 4000
    images = torch.full((n, 3, 32, 32), 200, dtype=torch.uint8)
    out = augment.build("crop_flip_cutout", mean=(0.2, 0.4, 0.6))(images, torch.Generator().manual_seed(2))
    hole = (out == torch.tensor([51, 102, 153], dtype=torch.uint8).view(1, 3, 1, 1)).all(1)  # [n, 32, 32]
    holed = hole.flatten(1).any(1)
    rate = holed.float().mean().item()
    # n = 4000: SE 0.0079; 0.03 is 3.8 SE, p = 0.6 would be 12.6 SE away
    assert abs(rate - 0.5) < 0.03, rate
    masks = hole[holed]
    rows, cols = masks.any(2), masks.any(1)  # [m, 32]: which rows / columns the hole touches
    assert (masks.flatten(1).sum(1) == 256).all()            # always a full 16x16 square, never clipped
    assert (rows.sum(1) == 16).all() and (cols.sum(1) == 16).all()
    tops, lefts = rows.float().argmax(1), cols.float().argmax(1)
    # fully inside the image: the top-left corner takes every position 0..16 and no other
    assert sorted(set(tops.tolist())) == list(range(17))
    assert sorted(set(lefts.tolist())) == list(range(17))


# --- 2d. the NaiveNet policy: rotation, shear, crop and flip, measured ----------------------------------

SIDE = 64                 # square, so the affine map's normalised coordinates have one scale in x and y
MID = (SIDE - 1) / 2      # the centre the policy rotates about, in pixel coordinates


def _cross(n: int) -> torch.Tensor:
    """A red horizontal bar left of centre (columns 8..47, centre 27.5) and a green vertical bar through the
    centre (rows 12..51), each 4 pixels wide, on black."""
    images = torch.zeros(n, 3, SIDE, SIDE, dtype=torch.uint8)
    images[:, 0, 30:34, 8:48] = 200
    images[:, 1, 12:52, 30:34] = 200
    return images


def _fit_bar(plane: torch.Tensor, horizontal: bool):
    """Fit a straight line to a bar in `plane` [B, H, W]. For a horizontal bar: per column, the row centroid
    of the intensity above half the plane's range (which drops the background, lifted by colour jitter's
    contrast, and the other bar's luma bleeding in through saturation, < 12 % of the peak); then a least
    squares line row = a + slope * column over the columns the bar covers fully (its ends excluded).
    Coordinates are relative to the image centre. Returns (slope, intercept, mean position along the bar)."""
    low, high = plane.amin(dim=(1, 2), keepdim=True), plane.amax(dim=(1, 2), keepdim=True)
    weight = (plane - (low + high) / 2).clamp(min=0)
    if not horizontal:
        weight = weight.transpose(1, 2)  # now "columns" run along the bar either way
    coord = torch.arange(SIDE, dtype=torch.float64) - MID
    mass = weight.sum(1)                                                      # [B, along]
    across = (weight * coord[None, :, None]).sum(1) / mass.clamp(min=1e-9)    # [B, along]
    count = (weight > 0).sum(1)
    full = (count >= count.amax(1, keepdim=True) - 1).double()
    n = full.sum(1)
    mean_pos, mean_across = (full * coord).sum(1) / n, (full * across).sum(1) / n
    centred = coord[None] - mean_pos[:, None]
    slope = (full * centred * (across - mean_across[:, None])).sum(1) / (full * centred ** 2).sum(1)
    return slope, mean_across - slope * mean_pos, (mass * coord).sum(1) / mass.sum(1)


def _measure_naivenet(n: int, seed: int):
    """Rotation and shear (degrees), crop shift (pixels, before the affine map) and flip of each draw.

    The affine map sends a direction (x, y) to R(angle) S(shear) (x, y) with S = [[1, tan shear], [0, 1]]:
    the horizontal bar comes out at slope tan(angle), the vertical bar at d column / d row = tan(shear -
    angle). The bars cross where the (shifted) image centre went; undoing R S there gives the crop shift.
    The red bar lies left of the crossing unless the image was flipped. Checked against the generator's
    own draws while writing this test: angles within 0.55 degrees, shifts within 0.06 pixels."""
    out = augment.build("naivenet")(_cross(n), torch.Generator().manual_seed(seed)).double()
    slope_h, row0, red_mean_x = _fit_bar(out[:, 0], horizontal=True)   # row = row0 + slope_h * column
    slope_v, col0, _ = _fit_bar(out[:, 1], horizontal=False)           # column = col0 + slope_v * row
    angle = torch.atan(slope_h)
    shear = torch.atan(slope_v) + angle
    y = (row0 + slope_h * col0) / (1 - slope_h * slope_v)                  # where the two lines cross
    x = col0 + slope_v * y
    cos, sin, skew = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.stack([torch.stack([torch.ones_like(skew), skew], -1),
                            torch.stack([torch.zeros_like(skew), torch.ones_like(skew)], -1)], -2)
    shift = torch.linalg.solve(rotation @ shearing, torch.stack([x, y], -1))  # [n, 2]: (dx, dy)
    flipped = red_mean_x > x
    return torch.rad2deg(angle), torch.rad2deg(shear), shift, flipped


@pytest.fixture(scope="module")
def naivenet_draws():
    return _measure_naivenet(2000, seed=0)


def test_naivenet_rotation_is_uniform_within_10_degrees(naivenet_draws):
    angle = naivenet_draws[0]
    # Uniform on [-10, 10]: of 2000 draws the largest |angle| is within 0.01 degrees of 10, plus the
    # measurement error (< 0.55 degrees): 8 or 12 degrees would land outside [9.4, 10.6].
    assert 9.4 < angle.abs().max().item() < 10.6
    # Standard deviation 10 / sqrt 3 = 5.77; its SE at n = 2000 is 1 % (uniform: sqrt(0.8 / 4n)); 4 % is
    # 4 SE, while 8 or 12 degrees would be 20 % off. The mean is 0 (SE 0.13 degrees).
    assert abs(angle.std().item() / (10 / math.sqrt(3)) - 1) < 0.04
    assert abs(angle.mean().item()) < 0.5


def test_naivenet_shear_is_uniform_within_5_degrees(naivenet_draws):
    shear = naivenet_draws[1]
    # as above, with the errors of both bars (< 0.55 degrees): 3 or 7 degrees would land outside [4.4, 5.6]
    assert 4.4 < shear.abs().max().item() < 5.6
    # standard deviation 5 / sqrt 3 = 2.89, SE 1 %; 5 % leaves room for the measurement error, and 4 or 6
    # degrees would be 20 % off
    assert abs(shear.std().item() / (5 / math.sqrt(3)) - 1) < 0.05
    assert abs(shear.mean().item()) < 0.3


def test_naivenet_crops_with_pad_4_and_flips_with_p_one_half(naivenet_draws):
    shift, flipped = naivenet_draws[2], naivenet_draws[3]
    # the recovered shifts are integers to within the measurement error (< 0.06 px)
    assert (shift - shift.round()).abs().max().item() < 0.25
    for axis in range(2):
        assert sorted(set(shift[:, axis].round().int().tolist())) == list(range(-4, 5))
    # n = 2000: SE 0.011; 0.045 is 4 SE, and p = 0.4 or 0.6 would be 9 SE away
    assert abs(flipped.double().mean().item() - 0.5) < 0.045


# --- 2e. colour jitter, measured ------------------------------------------------------------------------

def _jitter_factors(jitter, n: int, seed: int):
    """Brightness, contrast and saturation factor of each of n draws, read off one image that holds two greys
    (80 and 140) and a colour (140, 100, 60).
    Brightness multiplies everything; contrast moves every pixel away from the image's mean luma, which it
    keeps; saturation moves each pixel away from its own luma, which it keeps and which a grey pixel equals.
    So: mean luma out / in = brightness, grey difference out / in = brightness x contrast, and a chroma
    difference (red - blue of the colour) out / in = brightness x contrast x saturation. Nothing is clamped
    (all values stay within 0.8^3 .. 1.2^3 of values in 60..140)."""
    image = torch.tensor([[80.0, 140.0], [140.0, 140.0]]).expand(3, 2, 2).clone()
    image[:, 1, :] = torch.tensor([140.0, 100.0, 60.0])[:, None]
    images = image.expand(n, 3, 2, 2).clone()
    out = jitter(images, torch.Generator().manual_seed(seed))
    luma = torch.tensor(augment.LUMA).view(1, 3, 1, 1)
    brightness = (out * luma).sum(1).mean((1, 2)) / (images * luma).sum(1).mean((1, 2))
    grey = (out[:, 0, 0, 1] - out[:, 0, 0, 0]) / (images[:, 0, 0, 1] - images[:, 0, 0, 0])
    chroma = (out[:, 0, 1, 0] - out[:, 2, 1, 0]) / (images[:, 0, 1, 0] - images[:, 2, 1, 0])
    return {"brightness": brightness, "contrast": grey / brightness, "saturation": chroma / grey}


def test_colour_jitter_factors_are_uniform_in_0_8_to_1_2():
    factors = _jitter_factors(augment.color_jitter, 4000, seed=3)   # the defaults naivenet calls it with
    for name, f in factors.items():
        # uniform on [0.8, 1.2]: of 4000 draws the extremes lie within 0.002 of the bounds unless a
        # 1-in-e^20 event happens; 1e-4 allows float32 rounding; 0.15 or 0.25 would miss by 0.05
        assert 0.8 - 1e-4 <= f.min().item() < 0.802, (name, f.min().item())
        assert 1.198 < f.max().item() <= 1.2 + 1e-4, (name, f.max().item())
        # mean 1 (SE 0.0018) and standard deviation 0.2 / sqrt 3 = 0.115 (SE 0.7 %)
        assert abs(f.mean().item() - 1) < 0.008, name
        assert abs(f.std().item() / (0.2 / math.sqrt(3)) - 1) < 0.03, name


def test_colour_jitter_on_a_flat_grey_image_only_scales_its_brightness():
    # the brief's flat-grey reading: contrast and saturation leave a flat grey image alone
    images = torch.full((2000, 3, 4, 4), 100.0)
    out = augment.color_jitter(images, torch.Generator().manual_seed(4))
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out))         # still flat and grey
    ratio = out[:, 0, 0, 0] / 100.0
    assert 0.8 - 1e-4 <= ratio.min().item() < 0.802 and 1.198 < ratio.max().item() <= 1.2 + 1e-4


# --- 2f. the ImageNet JPEG pipeline ---------------------------------------------------------------------

def test_imagenet_jitter_is_0_4_in_the_cpu_route_transform():
    assert jpeg_pipeline.JITTER == 0.4
    steps = jpeg_pipeline.train_transform(224).transforms
    crop, flip, jitter, _, normalize = steps
    assert crop.size == (224, 224) and crop.scale == (0.08, 1.0) and crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert flip.p == 0.5
    assert jitter.brightness == jitter.contrast == jitter.saturation == pytest.approx((0.6, 1.4))
    assert jitter.hue is None
    assert tuple(normalize.mean) == (0.485, 0.456, 0.406) and tuple(normalize.std) == (0.229, 0.224, 0.225)


def test_cpu_route_transform_scales_a_grey_image_by_0_6_to_1_4():
    # A flat grey PIL image keeps its value under any crop, flip, contrast and saturation; ColorJitter's
    # brightness scales it. PIL rounds to whole grey levels: +-0.5 / 150 = 0.0033.
    transform = jpeg_pipeline.train_transform(8)
    image = Image.new("RGB", (24, 24), (150, 150, 150))
    mean = torch.tensor(jpeg_pipeline.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(jpeg_pipeline.IMAGENET_STD).view(3, 1, 1)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        factors = torch.stack([((transform(image) * std + mean) * 255 / 150).mean() for _ in range(1000)])
    # uniform on [0.6, 1.4], 1000 draws: extremes within 0.01 of the bounds (gap > 0.01: p ~ e^-12)
    assert 0.6 - 0.004 <= factors.min().item() < 0.61 and 1.39 < factors.max().item() <= 1.4 + 0.004


def test_random_resized_box_draws_area_8_to_100_percent_and_aspect_3_4_to_4_3():
    generator = torch.Generator().manual_seed(6)
    boxes = torch.tensor([jpeg_pipeline.random_resized_box(1000, 1000, generator) for _ in range(4000)],
                         dtype=torch.float64)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 1000).all() and (left + w <= 1000).all()
    area, aspect = h * w / 1e6, w / h
    # Area targets are uniform on [0.08, 1] (boxes that do not fit are drawn again): of 4000 draws the
    # smallest lies within 0.002 of 0.08 (a 1-in-e^8 miss); a scale of 0.05 or 0.1 would fall outside.
    # Rounding w and h to whole pixels moves the area by < 0.4 %.
    assert 0.0795 <= area.min().item() < 0.082
    # Areas near 1 fit only with an aspect near 1; about 20 of 4000 draws land above 0.95.
    assert area.max().item() > 0.95
    # Aspect log-uniform on [3/4, 4/3] (rounding: < 0.5 % at the smallest boxes); 0.7 / 0.8 would fail.
    assert 0.745 < aspect.min().item() < 0.76 and 1.32 < aspect.max().item() < 1.34
    assert abs(torch.log(aspect).mean().item()) < 0.01   # symmetric in log ratio (SE 0.0026)


def test_eval_resize_is_256_for_224():
    assert jpeg_pipeline.default_eval_resize(224) == 256
    assert jpeg_pipeline.default_eval_resize(112) == 128
    assert jpeg_pipeline.default_eval_resize(64) == 73   # 64 * 256 / 224 = 73.1
    resize, crop = jpeg_pipeline.eval_transform(224, jpeg_pipeline.default_eval_resize(224)).transforms[:2]
    assert resize.size == 256 and crop.size == (224, 224)


class _RepeatedJpegs:
    """A jpeg_pipeline source: n flat grey JPEGs (label 0) interleaved with n left-to-right ramps (label 1).
    The ramp (40..133) stays unclamped under any brightness and contrast in 0.6..1.4, so it never turns flat."""

    def __init__(self, n: int):
        ramp = np.repeat(np.repeat((40 + 3 * np.arange(32)).astype(np.uint8)[None, :, None], 32, 0), 3, 2)
        self.images = [self._jpeg(Image.new("RGB", (32, 32), (128, 128, 128))), self._jpeg(Image.fromarray(ramp))]
        self.n = n

    @staticmethod
    def _jpeg(image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=95)
        return buffer.getvalue()

    def __len__(self) -> int:
        return 2 * self.n

    def record(self, index: int):
        return self.images[index % 2], index % 2, f"{index}.jpg"


def test_gpu_route_jitters_with_0_4_and_flips_with_p_one_half_on_cpu(monkeypatch):
    # DeviceJpegLoader holds the GPU route's logic and runs on any device; here on the CPU.
    seen = {}
    original_jitter, original_box = jpeg_pipeline.color_jitter, jpeg_pipeline.random_resized_box

    def jitter(x, generator, *args, **kwargs):
        bound = inspect.signature(original_jitter).bind(x, generator, *args, **kwargs)
        bound.apply_defaults()
        seen["jitter"] = {k: v for k, v in bound.arguments.items() if k not in ("x", "generator")}
        return original_jitter(x, generator, *args, **kwargs)

    def box(height, width, generator, *args, **kwargs):
        bound = inspect.signature(original_box).bind(height, width, generator, *args, **kwargs)
        bound.apply_defaults()
        seen["box"] = {"scale": bound.arguments["scale"], "ratio": bound.arguments["ratio"]}
        return original_box(height, width, generator, *args, **kwargs)

    monkeypatch.setattr(jpeg_pipeline, "color_jitter", jitter)
    monkeypatch.setattr(jpeg_pipeline, "random_resized_box", box)
    loader = jpeg_pipeline.DeviceJpegLoader(_RepeatedJpegs(1000), 500, device="cpu", train=True, size=16,
                                            resize=18, skip_log=jpeg_pipeline.SkipLog({}), num_workers=0, seed=7)
    mean = torch.tensor(jpeg_pipeline.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(jpeg_pipeline.IMAGENET_STD).view(1, 3, 1, 1)
    brightness, flipped = [], []
    for x, labels in loader:
        x = x * std + mean                                                   # back to 0-1
        brightness.append(x[labels == 0].mean((1, 2, 3)) / (128 / 255))
        ramp = x[labels == 1].mean((1, 2))                                   # [m, 16]: column profile
        flipped.append(ramp[:, :8].mean(1) > ramp[:, 8:].mean(1))            # bright side on the left
    assert seen["jitter"] == {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "max_value": 1.0}
    assert seen["box"] == {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3)}
    factors = torch.cat(brightness)
    # 1000 flat greys, factor uniform on [0.6, 1.4]: extremes within 0.01 of the bounds (miss: p ~ e^-12)
    assert 0.6 - 1e-3 <= factors.min().item() < 0.61 and 1.39 < factors.max().item() <= 1.4 + 1e-3
    rate = torch.cat(flipped).float().mean().item()
    # 1000 ramps: SE 0.016; 0.06 is 3.8 SE, and p = 0.4 or 0.6 would be 6 SE away
    assert abs(rate - 0.5) < 0.06, rate


# --- 3. normalisation statistics ------------------------------------------------------------------------

def test_channel_stats_use_all_pixels_of_the_split_and_the_sample_standard_deviation():
    # Two 1x2 images. Channel 0: one image black, one white - the split's std is large although each
    # image is flat (a per-image average would give 0). Channel 2 has four distinct values.
    images = torch.zeros(2, 3, 1, 2, dtype=torch.uint8)
    images[1, 0] = 255
    images[:, 1] = 51
    images[:, 2] = torch.tensor([[[0, 51]], [[102, 153]]], dtype=torch.uint8)
    mean, std = channel_stats(images)
    assert mean == (0.5, 0.2, 0.3)
    # sample (n - 1 = 3) standard deviation: sqrt(4 x 0.25 / 3) = 0.5774 and sqrt(0.2 / 3) = 0.2582;
    # the population one would be 0.5 and 0.2236
    assert std == (0.5774, 0.0, 0.2582)


def test_channel_stats_of_a_split_parsed_from_disk_match_numpy(tmp_path):
    base = synthetic.write(tmp_path, num_classes=10, n_train=300, n_test=60, seed=7)
    split = cifar.load_split(cifar.CIFAR10, base, train=True)
    written, _ = synthetic.generate(10, 300, 7)          # what was written, [N, 3, 32, 32]
    assert torch.equal(split.images, torch.from_numpy(written))
    pixels = written.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64) / 255.0
    mean, std = channel_stats(split.images)
    # rounded to 4 decimals: within 5e-5 of numpy's per-channel mean and sample std (ddof=1)
    np.testing.assert_allclose(mean, pixels.mean(1), rtol=0, atol=5e-5 + 1e-12)
    np.testing.assert_allclose(std, pixels.std(1, ddof=1), rtol=0, atol=5e-5 + 1e-12)
    assert len(set(mean)) == 3  # the channels differ, so a transposed layout would not pass


def test_dataset_normalisation_uses_the_training_split_statistics(tmp_path):
    config = TrainConfig(dataset="synthetic", data_root=str(tmp_path), synthetic_train_size=300,
                         synthetic_test_size=60, normalization="dataset", progress=False)
    bundle = cifar_bundle(config, "cpu", torch.Generator().manual_seed(0))
    assert (bundle.mean, bundle.std) == channel_stats(bundle.train_split.images)
    assert (bundle.mean, bundle.std) != channel_stats(bundle.test_split.images)
    config.normalization = "half"
    half = cifar_bundle(config, "cpu", torch.Generator().manual_seed(0))
    assert half.mean == half.std == (0.5, 0.5, 0.5)
