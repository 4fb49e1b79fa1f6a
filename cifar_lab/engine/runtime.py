"""Where and how a run executes: device, numeric precision, seeds and deterministic mode."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from ..errors import UsageError


def mps_available() -> bool:
    """Apple-silicon GPU (Metal Performance Shaders), as PyTorch's MPS backend reports it."""
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device=cuda was asked for but no CUDA GPU is visible; use --set device=cpu or auto")
    if name == "mps" and not mps_available():
        raise UsageError("device=mps was asked for but this machine has no Apple-silicon GPU (MPS); "
                         "use --set device=cpu or auto")
    return torch.device(name)


def mps_supports_bf16() -> bool:
    # Metal gained bfloat16 with macOS 14 (Sonoma); PyTorch refuses bf16 tensors on MPS before that.
    check = getattr(torch.backends.mps, "is_macos_or_newer", None)
    return bool(check and check(14, 0))


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' picks bf16 where the hardware runs it natively, fp16 on older GPUs, fp32 otherwise."""
    if name != "auto":
        if name == "fp16" and device.type == "cpu":
            raise UsageError("precision=fp16 needs a CUDA GPU; on the CPU use bf16 or fp32")
        if name == "bf16" and device.type == "mps" and not mps_supports_bf16():
            raise UsageError("precision=bf16 needs macOS 14 or newer on MPS; use --set precision=fp16 or fp32")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"   # MPS autocast's native half type; bf16 only on recent macOS, and no faster there
    return "bf16" if cpu_supports_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def distinct_seeds(seeds) -> list[int]:
    """`seeds` as a list of integers, checked: at least one, each an integer, none twice (a repeated seed
    repeats a run and would shrink the spread it is meant to show)."""
    try:
        found = [] if isinstance(seeds, str) else [int(seed) for seed in seeds]
        exact = all(isinstance(seed, str) or int(seed) == seed for seed in seeds)  # 1.5 is no seed
    except (TypeError, ValueError):
        found, exact = [], False
    if not found or not exact or len(set(found)) != len(found):
        raise UsageError(f"seeds must be distinct integers, at least one (got {seeds!r}); e.g. seeds=[0, 1, 2]")
    return found


def set_deterministic(enabled: bool) -> None:
    """Bitwise-repeatable kernels (slower); needed for resume-equals-uninterrupted checks on a GPU."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def rng_state(loader_generator: torch.Generator | None) -> dict:
    """Every random number generator's state as tensors and lists, so that a checkpoint holding it loads with
    `torch.load(weights_only=True)` (numpy's own state object is an array, which a weights-only load refuses)."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {"bit_generator": numpy_state["bit_generator"],
                  "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                  "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                  "gauss": float(numpy_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if mps_available():
        state["mps"] = torch.mps.get_rng_state()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict, loader_generator: torch.Generator | None) -> None:
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": numpy_state["bit_generator"],
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and mps_available():
        torch.mps.set_rng_state(state["mps"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])
