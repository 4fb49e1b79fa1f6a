"""Cutout and the NaiveNet policy: hole size, how often a hole appears, what fills it, and the device loader
binding the dataset mean."""
import pytest
import torch

from cifar_lab.data import augment
from cifar_lab.data.augment import color_jitter, cutout, random_affine
from cifar_lab.data.loader import DeviceLoader


def hole_masks(original: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
    """[B, H, W] True where any channel changed."""
    return (original != cut).any(dim=1)


def test_cutout_holes_are_16x16_squares_filled_with_the_given_value():
    images = torch.full((2000, 3, 32, 32), 200, dtype=torch.uint8)
    fill = torch.tensor([125, 122, 113], dtype=torch.uint8)
    out = cutout(images, torch.Generator().manual_seed(0), size=16, p=0.5, fill=fill)
    masks = hole_masks(images, out)
    holed = masks.any(dim=(1, 2))
    for mask, image in zip(masks[holed][:200], out[holed][:200]):
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert len(rows) == len(cols) == 16 and int(mask.sum()) == 256  # a full square, never clipped
        assert rows.max() - rows.min() == 15 and cols.max() - cols.min() == 15
        assert torch.equal(image[:, mask], fill[:, None].expand(3, 256))
    assert torch.equal(out[~holed], images[~holed])


def test_cutout_probability_is_one_half_and_positions_cover_the_image():
    images = torch.full((4000, 3, 32, 32), 200, dtype=torch.uint8)
    out = cutout(images, torch.Generator().manual_seed(1), fill=torch.zeros(3, dtype=torch.uint8))
    masks = hole_masks(images, out)
    rate = masks.any(dim=(1, 2)).float().mean().item()
    assert abs(rate - 0.5) < 0.03  # 4000 draws: standard error 0.008
    coverage = masks.float().mean(0)
    assert coverage[0, 0] > 0 and coverage[-1, -1] > 0  # corners are reachable
    assert coverage[16, 16] > coverage[0, 0]              # the centre is covered most often


def test_unbound_cutout_fills_with_the_batch_channel_mean():
    images = torch.zeros(64, 3, 32, 32, dtype=torch.uint8)
    images[:, 0] = 100
    images[:, 1, :, :16] = 50  # channel mean 25
    out = cutout(images, torch.Generator().manual_seed(2), p=1.0)
    values = out.permute(0, 2, 3, 1)[hole_masks(images, out)]
    assert values.numel() > 0
    assert set(values[:, 0].tolist()) == {100} and set(values[:, 2].tolist()) == {0}
    assert set(values[:, 1].tolist()) == {25}


def test_device_loader_fills_cutout_holes_with_the_normalisation_mean():
    images = torch.full((512, 3, 32, 32), 255, dtype=torch.uint8)
    mean = (0.4, 0.5, 0.6)
    loader = DeviceLoader(images, torch.zeros(512, dtype=torch.long), 512, device="cpu", mean=mean,
                          std=(0.25, 0.25, 0.25), train=True, policy="crop_flip_cutout",
                          generator=torch.Generator().manual_seed(3))
    batch, _ = next(iter(loader))
    # mean-filled before normalisation = exactly the dataset mean, i.e. ~0 after it (one grey level of rounding)
    near_zero = (batch.abs() < 1.0 / (255 * 0.25) + 1e-6).all(dim=1)
    holed = near_zero.sum(dim=(1, 2)) >= 256
    assert 0.4 < holed.float().mean().item() < 0.6


def test_crop_flip_cutout_is_reproducible_from_the_generator():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    policy = augment.build("crop_flip_cutout")
    first = policy(images, torch.Generator().manual_seed(5))
    second = policy(images, torch.Generator().manual_seed(5))
    assert torch.equal(first, second) and not torch.equal(first, images)


def test_naivenet_policy_keeps_shape_and_dtype_and_draws_per_image():
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).expand(32, -1, -1, -1).contiguous()
    out = augment.build("naivenet")(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    distinct = {tuple(x.flatten()[:256].tolist()) for x in out}
    assert len(distinct) > 16  # one batch, many different transformations


def test_affine_stays_within_ten_degrees_and_jitter_keeps_the_range():
    # a horizontal bright bar: after rotation by at most 10 deg (+5 deg shear, which leaves rows alone)
    # its rows move by at most tan(10 deg) * 16 ~ 3 pixels at the image border
    images = torch.zeros(256, 3, 32, 32, dtype=torch.uint8)
    images[:, :, 15:17, :] = 255
    out = random_affine(images, torch.Generator().manual_seed(0))
    rows = (out[:, 0] > 127).nonzero()[:, 1]
    assert rows.min() >= 15 - 4 and rows.max() <= 16 + 4
    jittered = color_jitter(torch.randint(0, 256, (64, 3, 32, 32)).float(), torch.Generator())
    assert jittered.min() >= 0 and jittered.max() <= 255
    unit = color_jitter(torch.rand(8, 3, 16, 16), torch.Generator(), 0.4, 0.4, 0.4, max_value=1.0)
    assert unit.min() >= 0 and unit.max() <= 1


@pytest.mark.parametrize("name", ["crop_flip_cutout", "naivenet"])
def test_policies_are_registered(name):
    assert name in augment.names()
