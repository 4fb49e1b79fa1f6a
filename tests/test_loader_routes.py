"""The loaders' shared rules: one per-rank seed for every route, and the torchvision route's `augment=none`.
What a run's loaders serve, built from its config, is checked on pixels in `test_data_path.py`."""
from __future__ import annotations

import pytest
import torch

from cifar_lab.data.loader import epoch_seed, rank_seed


def _images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator), torch.arange(n)


def test_every_route_seeds_a_rank_with_the_one_formula(tmp_path):
    from cifar_lab.data.jpeg_pipeline import CpuJpegLoader, DeviceJpegLoader, FolderSource, SkipLog
    from cifar_lab.data.loader import DeviceLoader
    from cifar_lab.data.reference import make_loader

    images, labels = _images(16)
    seed, rank, world, epoch = 5, 1, 2, 3
    expected = epoch_seed(rank_seed(seed, rank), epoch)
    assert rank_seed(seed, 0) != seed  # rank 0's own stream is not the shuffle's, which is drawn from `seed`
    assert len({rank_seed(seed, r) for r in range(8)}) == 8

    device = DeviceLoader(images, labels, 4, device="cpu", mean=(0.5,) * 3, std=(0.5,) * 3, train=True,
                          generator=torch.Generator()).sharded(rank, world, seed)
    device.set_epoch(epoch)
    reference = make_loader(images, labels, 4, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, num_workers=0,
                            seed=seed).sharded(rank, world, seed)
    reference.set_epoch(epoch)
    source = FolderSource([str(tmp_path / f"{i}.JPEG") for i in range(16)], [0] * 16)
    common = dict(train=True, size=16, resize=18, skip_log=SkipLog({}), num_workers=0, seed=seed)
    cpu = CpuJpegLoader(source, 4, **common).sharded(rank, world, seed)
    cpu.set_epoch(epoch)
    gpu = DeviceJpegLoader(source, 4, device="cpu", **common).sharded(rank, world, seed)
    gpu.set_epoch(epoch)
    assert device.generator.initial_seed() == expected
    assert reference.loader.generator.initial_seed() == expected
    assert cpu.loader.generator.initial_seed() == expected
    assert gpu.loader.generator.initial_seed() == expected
    assert gpu.generator.initial_seed() == epoch_seed(rank_seed(seed + 1, rank), epoch)  # crops and jitter


def _normalised(image: torch.Tensor) -> torch.Tensor:
    return (image.float() / 255 - 0.5) / 0.5


def test_torchvision_route_with_augment_none_trains_on_the_images_as_they_are():
    from cifar_lab.data.reference import make_loader

    images, labels = _images(64)
    loader = make_loader(images, labels, 16, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, num_workers=0, seed=1,
                         augment="none")
    seen = []
    for batch, index in loader:
        for x, i in zip(batch, index):
            assert torch.allclose(x, _normalised(images[i]), atol=1e-6)   # not cropped, not flipped
            seen.append(int(i))
    assert sorted(seen) == list(range(64)) and seen != list(range(64))  # every image once, shuffled


def test_torchvision_route_with_crop_flip_changes_the_images():
    from cifar_lab.data.reference import make_loader

    images, labels = _images(64)
    loader = make_loader(images, labels, 16, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, num_workers=0, seed=1)
    changed = sum(not torch.allclose(x, _normalised(images[i]), atol=1e-6) for batch, index in loader
                  for x, i in zip(batch, index))
    assert changed > 32   # a crop other than the centre or a flip, for most of the 64


def test_torchvision_route_refuses_a_policy_it_does_not_implement():
    from cifar_lab.data.reference import make_loader
    from cifar_lab.errors import UsageError

    images, labels = _images(8)
    with pytest.raises(UsageError, match="loader=torchvision implements only"):
        make_loader(images, labels, 4, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, augment="crop_flip_cutout")
