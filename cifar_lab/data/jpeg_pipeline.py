"""The ImageNet input pipeline: encoded images in, normalised float batches out, by one of two routes.

Train: RandomResizedCrop(size), horizontal flip, ColorJitter(brightness, contrast, saturation 0.4), ImageNet
mean/std. Eval: resize the shorter side to `resize` (256 for 224), centre crop `size`.

- route `cpu` (the reference): DataLoader workers decode each file with PIL and apply torchvision transforms.
- route `gpu`: workers only read the encoded bytes; the main process decodes the whole batch on the device with
  `torchvision.io.decode_jpeg(device="cuda")` and augments there. Without CUDA this route is refused with a
  UsageError, never swapped for the CPU route. (`DeviceJpegLoader` runs on any device so its logic is tested
  on CPU; `make_loader` is what refuses.)

Both routes read from a *source*: an indexable object with `len()` and `record(i) -> (bytes, label, name)`
(`FolderSource` for `ROOT/split/<wnid>/*.JPEG`, `HFSource` in `imagenet.py`). A file that cannot be decoded
is reported once on stderr with its name and skipped; `SkipLog` counts them into the bundle's
`info["skipped_files"]`, which the engine copies into summary.json. A batch none of whose files decode is
dropped in one process; with several processes every rank must take as many training steps (each step
all-reduces with the others), so such a batch is replaced by this rank's previous decodable batch, or at the
start of an epoch by its next one (`equal_steps`). A split none of whose files decode is a UsageError.
"""
from __future__ import annotations

import io
import math
import sys
import warnings
from pathlib import Path
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ..errors import UsageError
from .augment import color_jitter
from .loader import epoch_seed, rank_seed

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JITTER = 0.4
ROUTES = ("cpu", "gpu")


def default_eval_resize(size: int) -> int:
    """The standard 256/224 ratio: Resize 256 then CenterCrop 224."""
    return int(round(size * 256 / 224))


class FolderSource:
    """Files and labels of one split of an ImageFolder tree; `record` reads the encoded bytes."""

    def __init__(self, files: list[str], labels: list[int]):
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def record(self, index: int) -> tuple[bytes, int, str]:
        path = self.files[index]
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = b""   # unreadable: decoding fails below and the file is skipped with its path
        return data, self.labels[index], path


def decode_rgb(data: bytes) -> Image.Image:
    """Decode with PIL and convert any mode (L, CMYK, P, RGBA) to RGB; raises on corrupt or truncated data."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")  # convert() forces the full decode, so truncation fails here


def train_transform(size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(JITTER, JITTER, JITTER), transforms.ToTensor(), transforms.Normalize(mean, std)])


def eval_transform(size: int, resize: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(size), transforms.ToTensor(),
                               transforms.Normalize(mean, std)])


class SkipLog:
    """Names of files that could not be decoded, reported once each and counted into `info`."""

    def __init__(self, info: dict):
        self.info = info
        self.names: set[str] = set()
        info.setdefault("skipped_files", 0)
        info.setdefault("skipped_paths", [])

    def add(self, names) -> None:
        for name in names:
            if name not in self.names:
                self.names.add(name)
                print(f"warning: skipped unreadable image {name}", file=sys.stderr)
        self.info["skipped_files"] = len(self.names)
        self.info["skipped_paths"] = sorted(self.names)


# --- route 1: CPU workers (the reference) -------------------------------------------------------------

class DecodedDataset(Dataset):
    """PIL decode + torchvision transform per sample; a corrupt file gives (None, label, name)."""

    def __init__(self, source, transform):
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        data, label, name = self.source.record(index)
        try:
            image = decode_rgb(data)
        except Exception:  # PIL raises several types for bad data; any of them means "skip this file"
            return None, label, name
        return self.transform(image), label, name


def collate_skipping(samples):
    """Stack the decodable samples; hand the names of the others back to the main process."""
    good = [(x, y) for x, y, _ in samples if x is not None]
    skipped = [name for x, _, name in samples if x is None]
    if not good:
        return None, None, skipped
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good], dtype=torch.long), skipped


def equal_steps(batches, *, substitute: bool, skip_log: SkipLog, split: str):
    """Yield the decodable batches of `batches` (pairs, or None for a batch with no decodable file).

    `substitute` (a training loader of several processes): a None is replaced by the previous decodable batch,
    or by the next one when none came yet, so the rank yields exactly as many batches as its sampler makes and
    takes as many optimizer steps as every other rank. Otherwise a None is dropped. A pass over the split in
    which no file at all decodes raises a UsageError instead of training or evaluating on nothing.
    """
    owed, last, dropped = 0, None, 0
    for batch in batches:
        if batch is None:
            dropped += 1
            if substitute and last is not None:
                yield last
            elif substitute:
                owed += 1   # nothing to repeat yet: the next decodable batch is yielded for it
            continue
        for _ in range(owed + 1):
            yield batch
        owed, last = 0, batch
    if dropped and last is None:
        examples = ", ".join(sorted(skip_log.names)[:2])
        raise UsageError(f"none of the {split} images this process read could be decoded ({len(skip_log.names)} "
                         f"unreadable, e.g. {examples}); check the files' permissions and format (JPEG, PNG), or "
                         f"point the dataset at a readable copy")


def shard_dataloader(loader: DataLoader, train: bool, rank: int, world: int, seed: int) -> DataLoader:
    """`loader` for rank `rank` of `world`: training through `DistributedSampler` (shuffled from the seed and
    `set_epoch`, the `len mod world` samples left over by the shuffle left out, so all ranks take as many
    batches); evaluation strided, rank r taking samples r, r + world, ..., each sample once."""
    from torch.utils.data import DistributedSampler

    if train:
        sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                     drop_last=True)
    else:
        sampler = list(range(rank, len(loader.dataset), world))
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, generator=loader.generator, pin_memory=loader.pin_memory,
                      persistent_workers=loader.persistent_workers)


def set_sampler_epoch(loader: DataLoader, epoch: int) -> None:
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


def node_source(source, rank: int, world: int):
    """A source's share for one rank where the source can split itself (the Hugging Face route), else None."""
    return source.by_node(rank, world) if hasattr(source, "by_node") else None


class CpuJpegLoader:
    """Iterate (normalised float images, labels) from DataLoader workers, counting skipped files."""

    def __init__(self, source, batch_size: int, *, train: bool, size: int, resize: int, skip_log: SkipLog,
                 num_workers: int = 2, seed: int = 0, channels_last: bool = False, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD):
        transform = train_transform(size, mean, std) if train else eval_transform(size, resize, mean, std)
        self.loader = DataLoader(DecodedDataset(source, transform), batch_size=batch_size, shuffle=train,
                                 num_workers=num_workers, collate_fn=collate_skipping,
                                 generator=torch.Generator().manual_seed(seed),
                                 pin_memory=torch.cuda.is_available())
        self.skip_log, self.channels_last, self.seed = skip_log, channels_last, seed
        self.train, self.rank, self.world = train, 0, 1

    def sharded(self, rank: int, world: int, seed: int) -> "CpuJpegLoader":
        """Rank `rank` of `world`: `DistributedSampler` (see `shard_dataloader`), or the rank's own part of a
        source that splits itself by node (Hugging Face `split_dataset_by_node`)."""
        self.rank, self.world = rank, world
        own = node_source(self.loader.dataset.source, rank, world)
        if own is not None:
            dataset = DecodedDataset(own, self.loader.dataset.transform)
            self.loader = DataLoader(dataset, batch_size=self.loader.batch_size, shuffle=self.train,
                                     num_workers=self.loader.num_workers, collate_fn=collate_skipping,
                                     generator=self.loader.generator, pin_memory=self.loader.pin_memory)
        else:
            self.loader = shard_dataloader(self.loader, self.train, rank, world, seed)
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Derive this epoch's shuffle and the workers' augmentation seeds from (seed, epoch) alone.

        Workers are not persistent, so each epoch starts them afresh from seeds drawn from this generator:
        a resumed run sees the same images in the same order with the same crops as an uninterrupted one.
        """
        self.loader.generator.manual_seed(epoch_seed(rank_seed(self.seed, self.rank), epoch))
        set_sampler_epoch(self.loader, epoch)

    def _batches(self) -> Iterator[Optional[tuple[torch.Tensor, torch.Tensor]]]:
        for images, labels, skipped in self.loader:
            if skipped:
                self.skip_log.add(skipped)
            if images is None:
                yield None
                continue
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return equal_steps(self._batches(), substitute=self.train and self.world > 1, skip_log=self.skip_log,
                           split="training" if self.train else "evaluation")


# --- route 2: decode and augment on the device ----------------------------------------------------------

class EncodedDataset(Dataset):
    """Only the file's bytes (as a uint8 tensor) travel from the workers; decoding happens on the device."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int):
        data, label, name = self.source.record(index)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8), \
            label, name


def collate_encoded(samples):
    return [s[0] for s in samples], torch.tensor([s[1] for s in samples], dtype=torch.long), [s[2] for s in samples]


def decode_batch(encoded: list[torch.Tensor], device: torch.device) -> list[Optional[torch.Tensor]]:
    """Decode a batch on `device` to uint8 RGB [3, H, W]; None where a file cannot be decoded.

    One batched call first (the fast path); if any file breaks it, each file is decoded alone so one bad
    file costs only itself. Files the device decoder refuses (nvJPEG lacks some CMYK variants) are decoded by
    PIL and moved to the device - that file only, and counted as decoded, not skipped.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    # torchvision 0.29 marks its decoders deprecated in favour of TorchCodec; they are still the documented
    # batched GPU decoder, so the warning (once per call) is silenced here.
    warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision")
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except Exception:  # decode_jpeg raises RuntimeError on bad data; retry one by one to find the bad file
        pass
    images: list[Optional[torch.Tensor]] = []
    for data in encoded:
        try:
            images.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            continue
        except Exception:
            pass
        try:
            pil = decode_rgb(data.numpy().tobytes())
            images.append(transforms.functional.pil_to_tensor(pil).to(device))
        except Exception:
            images.append(None)
    return images


def random_resized_box(height: int, width: int, generator: torch.Generator,
                       scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) drawn as torchvision's RandomResizedCrop draws them (10 tries, then a centre crop)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _resize(image: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]


class DeviceJpegLoader:
    """Iterate (normalised float images, labels) decoded and augmented on `device` in batches."""

    def __init__(self, source, batch_size: int, *, device, train: bool, size: int, resize: int, skip_log: SkipLog,
                 num_workers: int = 2, seed: int = 0, channels_last: bool = False, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD):
        self.device = torch.device(device)
        self.loader = DataLoader(EncodedDataset(source), batch_size=batch_size, shuffle=train,
                                 num_workers=num_workers, collate_fn=collate_encoded,
                                 generator=torch.Generator().manual_seed(seed))
        self.train, self.size, self.resize, self.seed = train, size, resize, seed
        self.skip_log, self.channels_last = skip_log, channels_last
        self.generator = torch.Generator().manual_seed(seed + 1)  # crop boxes and jitter factors
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self.rank, self.world = 0, 1

    def sharded(self, rank: int, world: int, seed: int) -> "DeviceJpegLoader":
        """Rank `rank` of `world`, sharded as the CPU route is (`shard_dataloader`, or the source's own split)."""
        self.rank, self.world = rank, world
        own = node_source(self.loader.dataset.source, rank, world)
        if own is not None:
            self.loader = DataLoader(EncodedDataset(own), batch_size=self.loader.batch_size, shuffle=self.train,
                                     num_workers=self.loader.num_workers, collate_fn=collate_encoded,
                                     generator=self.loader.generator)
        else:
            self.loader = shard_dataloader(self.loader, self.train, rank, world, seed)
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle, crop boxes and jitter of an epoch follow from (seed, epoch) (and the rank), so resume
        repeats them."""
        self.loader.generator.manual_seed(epoch_seed(rank_seed(self.seed, self.rank), epoch))
        self.generator.manual_seed(epoch_seed(rank_seed(self.seed + 1, self.rank), epoch))
        set_sampler_epoch(self.loader, epoch)

    def _crop(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        if self.train:
            top, left, ch, cw = random_resized_box(h, w, self.generator)
            return _resize(image[:, top:top + ch, left:left + cw], (self.size, self.size))
        scale = self.resize / min(h, w)
        resized = _resize(image, (max(self.size, round(h * scale)), max(self.size, round(w * scale))))
        top, left = (resized.shape[1] - self.size) // 2, (resized.shape[2] - self.size) // 2
        return resized[:, top:top + self.size, left:left + self.size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return equal_steps(self._batches(), substitute=self.train and self.world > 1, skip_log=self.skip_log,
                           split="training" if self.train else "evaluation")

    def _batches(self) -> Iterator[Optional[tuple[torch.Tensor, torch.Tensor]]]:
        for encoded, labels, names in self.loader:
            decoded = decode_batch(encoded, self.device)  # inputs stay on the host; decode_jpeg moves them
            keep = [i for i, image in enumerate(decoded) if image is not None]
            bad = [names[i] for i, image in enumerate(decoded) if image is None]
            if bad:
                self.skip_log.add(bad)
            if not keep:
                yield None
                continue
            x = torch.stack([self._crop(decoded[i]) for i in keep]).div_(255.0)
            if self.train:
                flip = (torch.rand(len(keep), generator=self.generator) < 0.5).to(self.device)
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
                x = color_jitter(x, self.generator, JITTER, JITTER, JITTER, max_value=1.0)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels[keep].to(self.device)


def check_route(route: str, device: torch.device) -> None:
    if route not in ROUTES:
        raise UsageError(f"jpeg_route={route!r} is not one of: {', '.join(ROUTES)}")
    if route == "gpu" and (device.type != "cuda" or not torch.cuda.is_available()):
        raise UsageError("jpeg_route=gpu decodes JPEG batches on a CUDA GPU (torchvision.io.decode_jpeg on "
                         "device='cuda') and no CUDA device is in use here; use jpeg_route=cpu")


def make_loader(route: str, source, batch_size: int, *, device, train: bool, size: int, resize: int,
                skip_log: SkipLog, num_workers: int = 2, seed: int = 0, channels_last: bool = False,
                mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The loader of `route` over `source`; the GPU route only on a CUDA device."""
    device = torch.device(device)
    check_route(route, device)
    common = dict(train=train, size=size, resize=resize, skip_log=skip_log, num_workers=num_workers, seed=seed,
                  channels_last=channels_last, mean=mean, std=std)
    if route == "gpu":
        return DeviceJpegLoader(source, batch_size, device=device, **common)
    return CpuJpegLoader(source, batch_size, **common)


def first_eval_batch(source, size: int, batch_size: int = 64) -> torch.Tensor:
    """The first `batch_size` images of `source` as the eval transform prepares them at `size` (resize by
    the standard 256/224 ratio, centre crop), on the CPU."""
    loader = make_loader("cpu", source, batch_size, device="cpu", train=False, size=size,
                         resize=default_eval_resize(size), skip_log=SkipLog({}), num_workers=0)
    images, _ = next(iter(loader))
    return images
