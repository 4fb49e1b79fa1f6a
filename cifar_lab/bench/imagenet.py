"""`cifar-lab bench imagenet-data`: training-pipeline images/s of each JPEG input route, same files, same run.

Routes (`cifar_lab.data.jpeg_pipeline`): `cpu` - DataLoader workers decode with PIL and apply torchvision's
RandomResizedCrop/flip/ColorJitter (the reference); `gpu` - workers read bytes, the batch is decoded with
`torchvision.io.decode_jpeg(device="cuda")` and augmented on the GPU. Without CUDA the GPU route is not run and
the report says so. The files are a generated JPEG tree (or `--root`, an ImageFolder tree of your own).
"""
from __future__ import annotations

import statistics

import torch

from ..data import synthetic_jpeg
from ..data.imagenet import class_folders, scan_split, split_dir
from ..data.jpeg_pipeline import SkipLog, default_eval_resize, make_loader
from ..errors import UsageError
from ..measure import timed
from ..provenance import device_name
from . import progress


def images_per_second(loader, batches: int, device: torch.device) -> float:
    def first_batches() -> int:
        seen = 0
        for index, (images, _) in enumerate(loader):
            seen += images.shape[0]
            if index + 1 == batches:
                break
        return seen

    return timed(first_batches, device)


def run(root: str | None = None, data_root: str = "data", images: int = 256, px: int = 320, size: int = 224,
        batch_size: int = 64, batches: int = 4, repeats: int = 3, workers: int = 2) -> dict:
    """Images per second of each JPEG route on the same files, alternated `repeats` times."""
    if min(images, px, size, batch_size, batches, repeats) < 1 or workers < 0:
        raise UsageError("--images, --px, --size, --batch-size, --batches and --repeats must be positive")
    if root:
        root = split_dir(root, "train").parent
    else:
        per_class = max(1, images // 8)
        root = synthetic_jpeg.write_tree(
            synthetic_jpeg.folder_for(data_root, 8, per_class, 1, px, seed=0), 8, per_class, 1, px)
    source = scan_split(root, "train", class_folders(split_dir(root, "train")))
    batches = min(batches, max(1, len(source) // batch_size))
    routes = {"cpu": torch.device("cpu")}
    if torch.cuda.is_available():
        routes["gpu"] = torch.device("cuda")
    result = {"benchmark": "imagenet-data", "root": str(root), "files": len(source), "size": size,
              "batch_size": batch_size, "batches": batches, "workers": workers, "repeats": repeats,
              "torch_threads": torch.get_num_threads(), "routes": {}}
    loaders = {}
    runs = {route: [] for route in routes}
    with progress(total=len(routes) * (1 + repeats), desc="bench imagenet-data", unit="run") as bar:
        for route, device in routes.items():
            bar.set_description(f"warm-up {route}")
            loaders[route] = make_loader(route, source, batch_size, device=device, train=True, size=size,
                                         resize=default_eval_resize(size), skip_log=SkipLog({}),
                                         num_workers=workers)
            images_per_second(loaders[route], 1, device)  # warm-up: worker start-up, decoder initialisation
            bar.update(1)
        for repeat in range(repeats):  # alternate the routes so drift in machine load hits both
            for route, device in routes.items():
                bar.set_description(f"repeat {repeat + 1}/{repeats}: {route}")
                runs[route].append(images_per_second(loaders[route], batches, device))
                bar.update(1)
    for route in routes:
        result["routes"][route] = {"img_s": statistics.median(runs[route]), "runs": runs[route]}
    if "gpu" in result["routes"]:
        result["ratio_gpu_over_cpu"] = result["routes"]["gpu"]["img_s"] / result["routes"]["cpu"]["img_s"]
        result["gpu_name"] = device_name(routes["gpu"])
    else:
        result["gpu_route"] = "not measured: needs CUDA"
    return result
