"""`cifar-lab bench imagenet-data`: training-pipeline images/s of each JPEG input route, same files, same run.

Routes (`cifar_lab.data.jpeg_pipeline`): `cpu` - DataLoader workers decode with PIL and apply torchvision's
RandomResizedCrop/flip/ColorJitter (the reference); `gpu` - workers read bytes, the batch is decoded with
`torchvision.io.decode_jpeg(device="cuda")` and augmented on the GPU. Without CUDA the GPU route is not run and
the report says so. The files are a generated JPEG tree (or `--root`, an ImageFolder tree of your own).
"""
from __future__ import annotations

import statistics
import time

import torch

from ..commands import write_json
from ..data import synthetic_jpeg
from ..data.imagenet import class_folders, scan_split, split_dir
from ..data.jpeg_pipeline import SkipLog, default_eval_resize, make_loader
from ..errors import UsageError
from .timing import sync


def register(bench_sub) -> None:
    p = bench_sub.add_parser("imagenet-data", help="JPEG input pipeline images/s: CPU workers vs GPU decoding",
                             description=__doc__.split("\n\n")[0])
    p.add_argument("--root", help="an ImageFolder tree ROOT/train/<wnid>/*.JPEG (default: a generated one)")
    p.add_argument("--data-root", default="data", help="where the generated tree is written (default: data)")
    p.add_argument("--images", type=int, default=256, help="generated training images (default: 256)")
    p.add_argument("--px", type=int, default=320, help="side of the generated JPEGs (default: 320, ImageNet-like)")
    p.add_argument("--size", type=int, default=224, help="training crop (default: 224)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=4, help="timed batches per run (default: 4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of both routes (default: 2)")
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=run)


def images_per_second(loader, batches: int, device: torch.device) -> float:
    sync(device)
    start, seen = time.perf_counter(), 0
    for index, (images, _) in enumerate(loader):
        seen += images.shape[0]
        if index + 1 == batches:
            break
    sync(device)
    return seen / (time.perf_counter() - start)


def run(args) -> int:
    if min(args.images, args.px, args.size, args.batch_size, args.batches, args.repeats) < 1 or args.workers < 0:
        raise UsageError("--images, --px, --size, --batch-size, --batches and --repeats must be positive")
    if args.root:
        root = split_dir(args.root, "train").parent
    else:
        per_class = max(1, args.images // 8)
        root = synthetic_jpeg.write_tree(
            synthetic_jpeg.folder_for(args.data_root, 8, per_class, 1, args.px, seed=0), 8, per_class, 1, args.px)
    source = scan_split(root, "train", class_folders(split_dir(root, "train")))
    batches = min(args.batches, max(1, len(source) // args.batch_size))
    routes = {"cpu": torch.device("cpu")}
    if torch.cuda.is_available():
        routes["gpu"] = torch.device("cuda")
    result = {"benchmark": "imagenet-data", "root": str(root), "files": len(source), "size": args.size,
              "batch_size": args.batch_size, "batches": batches, "workers": args.workers, "repeats": args.repeats,
              "torch_threads": torch.get_num_threads(), "routes": {}}
    loaders = {}
    for route, device in routes.items():
        loaders[route] = make_loader(route, source, args.batch_size, device=device, train=True, size=args.size,
                                     resize=default_eval_resize(args.size), skip_log=SkipLog({}),
                                     num_workers=args.workers)
        images_per_second(loaders[route], 1, device)  # warm-up: worker start-up, decoder initialisation
    runs = {route: [] for route in routes}
    for _ in range(args.repeats):  # alternate the routes so drift in machine load hits both
        for route, device in routes.items():
            runs[route].append(images_per_second(loaders[route], batches, device))
    for route in routes:
        result["routes"][route] = {"img_s": statistics.median(runs[route]), "runs": runs[route]}
    print(f"JPEG training pipeline on {len(source)} files ({root}), {args.size}px crops, batch {args.batch_size}, "
          f"{args.workers} workers:")
    print(f"  cpu route (DataLoader workers, PIL decode + torchvision transforms): "
          f"{result['routes']['cpu']['img_s']:,.0f} img/s")
    if "gpu" in result["routes"]:
        gpu = result["routes"]["gpu"]["img_s"]
        result["ratio_gpu_over_cpu"] = gpu / result["routes"]["cpu"]["img_s"]
        print(f"  gpu route (decode_jpeg on {torch.cuda.get_device_name()}, augmentation on the GPU): {gpu:,.0f} "
              f"img/s, {result['ratio_gpu_over_cpu']:.2f}x the cpu route")
    else:
        result["gpu_route"] = "not measured: needs CUDA"
        print("  gpu route: not measured - it decodes JPEG batches on a CUDA GPU "
              "(torchvision.io.decode_jpeg(device='cuda')) and this machine has no CUDA device")
    write_json(args.json, result)
    return 0


def training_memory_estimate(model: torch.nn.Module, image_size: int, batch_sizes, activation_bytes: int = 2,
                             optimizer_states: int = 2) -> list[dict]:
    """An estimate of training memory per batch size, for machines without a GPU to measure on.

    Weights, gradients and `optimizer_states` tensors per weight (AdamW: 2) in fp32; activations = the
    elements of every leaf module's output for one image (what autograd keeps for the backward pass, roughly),
    times `activation_bytes` (2 under bf16/fp16 autocast), times the batch size. It leaves out the allocator's
    slack, cuDNN workspaces and temporaries, so a measurement (`torch.cuda.max_memory_allocated`) is higher.
    """
    elements = []

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            elements.append(output.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    fixed = params * 4 * (2 + optimizer_states)
    per_image = sum(elements) * activation_bytes
    return [{"batch_size": b, "weights_grads_optimizer_MiB": fixed / 2**20, "activations_MiB": b * per_image / 2**20,
             "total_MiB": (fixed + b * per_image) / 2**20} for b in batch_sizes]


def measure_cuda_memory(model: torch.nn.Module, image_size: int, batch_sizes, precision: str = "bf16") -> dict:
    """Peak CUDA memory (MiB, `torch.cuda.max_memory_allocated`) of one AdamW training step per batch size."""
    device = torch.device("cuda")
    model = model.to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    peaks = {}
    for batch_size in batch_sizes:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        images = torch.randn(batch_size, 3, image_size, image_size, device=device).contiguous(
            memory_format=torch.channels_last)
        labels = torch.zeros(batch_size, dtype=torch.long, device=device)
        with torch.autocast("cuda", dtype=dtype):
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        peaks[batch_size] = torch.cuda.max_memory_allocated(device) / 2**20
    return peaks
