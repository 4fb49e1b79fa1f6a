"""Inference routes: one trained model, six ways to run it, each a module that maps normalised float32
NCHW images to fp32 logits, so that `measure.latency` times them all the same way.

- `eager`: the model as trained, fp32, contiguous memory (the reference every route is compared with);
- `channels_last`: the same weights in the channels-last memory format (PyTorch tutorial "Channels Last
  Memory Format"), which oneDNN and cuDNN convolutions prefer;
- `autocast`: `torch.autocast` in bf16 on a CPU that runs bf16 natively (AVX-512 BF16, AMX), fp16 on CUDA;
- `compile`: `torch.compile` with Inductor; on the CPU with `freezing`, which folds the weights into the
  graph as constants and pre-packs them for oneDNN (PyTorch docs, "Inductor CPU backend");
- `onnxruntime`: the ONNX export (`cifar_lab.export`) in ONNX Runtime, CPU execution provider, or CUDA
  where onnxruntime-gpu provides it;
- `int8`: post-training static quantization with ONNX Runtime (`quantize_static`, QDQ format, int8
  weights per output channel, uint8 activations, MinMax calibration on training images) on the CPU
  execution provider.

Why ONNX Runtime for int8 and not PyTorch's PT2E flow with the X86InductorQuantizer: in PyTorch 2.14 the
PT2E quantization APIs are no longer in `torch.ao.quantization` (they moved to the separate torchao
package), while ONNX Runtime's static quantization is part of the onnxruntime wheel this book already
uses for the `onnxruntime` route, runs on its CPU execution provider with VNNI int8 kernels, and
quantizes the very graph the export validated (ONNX Runtime docs, "Quantize ONNX models").
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import export
from .errors import UsageError
from .engine.runtime import cpu_supports_bf16
from .io import atomic_write, atomic_write_text
from .measure import weights_file_size

ROUTES = ("eager", "channels_last", "autocast", "compile", "onnxruntime", "int8")
REFERENCE = "eager"


@dataclass
class Route:
    """A route ready to run: `module` maps images to logits; `channels_last` says which layout it wants."""

    name: str
    module: nn.Module
    size_bytes: int
    detail: str
    device: str
    channels_last: bool = False
    info: dict = field(default_factory=dict)


class Autocast(nn.Module):
    """The model under `torch.autocast(dtype)`; logits come back in fp32."""

    def __init__(self, model: nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.model, self.device_type, self.dtype = model, device_type, dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.model(images).float()


class OnnxRuntime(nn.Module):
    """An ONNX Runtime session as a module: torch tensor in, torch tensor out (the copies are part of
    what a caller of the session pays, so they are timed too)."""

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.run = export.onnx_runner(session)
        self.input_device = "cuda" if "CUDAExecutionProvider" in session.get_providers() else "cpu"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images).to(images.device)


def onnx_providers(device: torch.device) -> list[str]:
    """CUDA execution provider on a CUDA device where the installed onnxruntime has it, else the CPU's."""
    import onnxruntime as ort

    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class Calibration:
    """ONNX Runtime's CalibrationDataReader protocol over a tensor of images, in batches."""

    def __init__(self, images: torch.Tensor, input_name: str, batch_size: int = 32):
        self.batches = [{input_name: chunk.contiguous().numpy()} for chunk in images.split(batch_size)]

    def get_next(self):
        return self.batches.pop(0) if self.batches else None

    def rewind(self):  # part of the protocol; one pass is all MinMax calibration needs
        pass


def quantize_int8(fp32_onnx: Path, out: Path, calibration_images: torch.Tensor) -> Path:
    """Static int8 quantization of an ONNX file (ONNX Runtime docs, "Quantize ONNX models"): pre-process
    (shape inference, graph optimisation), then QDQ with per-channel int8 weights and uint8 activations
    whose ranges come from MinMax calibration on `calibration_images`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + "-prepared.onnx")
    quant_pre_process(str(fp32_onnx), str(prepared))
    quantize_static(str(prepared), str(out), Calibration(calibration_images, export.INPUT_NAME),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    prepared.unlink(missing_ok=True)
    return out


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """bf16 on a CPU that runs it natively, fp16 on CUDA; None where autocast would only emulate."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def build(name: str, model: nn.Module, meta: dict, device, work_dir: Path,
          calibration_images: Optional[torch.Tensor] = None) -> Route:
    """Route `name` of `model` (eval mode, fp32), with its files written under `work_dir`."""
    device = torch.device(device)
    work_dir = Path(work_dir)
    resolution = meta["input"]["resolution"]
    on = device.type
    if name in ("eager", "channels_last", "autocast", "compile"):
        size = weights_file_size(model, work_dir / "weights.pt")
    if name == "eager":
        return Route(name, model.to(device), size, f"fp32, PyTorch eager ({on})", on)
    if name == "channels_last":
        twin = _copy(model).to(device, memory_format=torch.channels_last)
        return Route(name, twin, size, f"fp32, channels-last memory format ({on})", on, channels_last=True)
    if name == "autocast":
        dtype = autocast_dtype(device)
        if dtype is None:
            raise RouteUnavailable("this CPU has no native bf16 (AVX-512 BF16 or AMX); autocast would "
                                   "only emulate it")
        label = "bf16" if dtype == torch.bfloat16 else "fp16"
        return Route(name, Autocast(_copy(model).to(device), on, dtype), size,
                     f"{label} autocast, weights in fp32 ({on})", on, info={"dtype": label})
    if name == "compile":
        options = {"freezing": True} if on == "cpu" else {}
        # dynamic=False: one graph per input shape (batch 1, the batch size), none with symbolic sizes
        compiled = torch.compile(_copy(model).to(device), dynamic=False, options=options)
        return Route(name, compiled, size, "torch.compile, Inductor" + (" with freezing" if options else "")
                     + f" ({on})", on, info={"options": options})
    if name in ("onnxruntime", "int8"):
        fp32_file = onnx_export(model, meta, device, work_dir)
        if name == "onnxruntime":
            providers = onnx_providers(device)
            session = export.onnx_session(fp32_file, providers=providers)
            where = "CUDA" if session.get_providers()[0] == "CUDAExecutionProvider" else "CPU"
            return Route(name, OnnxRuntime(session), fp32_file.stat().st_size,
                         f"fp32, ONNX Runtime, {where} execution provider", where.lower())
        if calibration_images is None:
            raise RouteUnavailable("int8 needs calibration images")
        int8_file = quantize_int8(fp32_file, work_dir / "model-int8.onnx", calibration_images.cpu())
        session = export.onnx_session(int8_file)
        return Route(name, OnnxRuntime(session), int8_file.stat().st_size,
                     f"int8 static (QDQ, {len(calibration_images)} calibration images), ONNX Runtime, CPU "
                     f"execution provider", "cpu", info={"calibration_images": len(calibration_images)})
    raise UsageError(f"unknown route '{name}'; choose from: {', '.join(ROUTES)}")


ONNX_FILE = "model.onnx"
ONNX_RECORD = "model.onnx.json"   # what the file is the export of, and the SHA-256 of its bytes


def onnx_export(model: nn.Module, meta: dict, device: torch.device, work_dir: Path) -> Path:
    """`work_dir/model.onnx`, the fp32 ONNX export both ONNX routes start from, exported once and reused.

    The file is reused only when the record beside it says it is the export of this very model (its weights,
    input and metadata: `model_fingerprint`) and its bytes still hash to what was written; anything else (a
    file cut short by a kill or a full disk, another checkpoint's export in a kept work folder, a file without
    its record) is exported again. Both files are written atomically, the record last, so a kill between the
    two leaves a model without a record, which is not trusted.
    """
    path, record_path = work_dir / ONNX_FILE, work_dir / ONNX_RECORD
    fingerprint = model_fingerprint(model, meta)
    try:
        record = json.loads(record_path.read_text())
        if record["model"] == fingerprint and _sha256(path.read_bytes()) == record["sha256"]:
            return path
    except (OSError, ValueError, KeyError, TypeError):  # no record, no file, or not a record of ours
        pass
    data = export.onnx_bytes(model.cpu(), meta["input"]["resolution"], meta)
    model.to(device)
    record_path.unlink(missing_ok=True)
    atomic_write(path, lambda handle: handle.write(data))
    atomic_write_text(record_path, json.dumps({"model": fingerprint, "sha256": _sha256(data)}, indent=2) + "\n")
    return path


def model_fingerprint(model: nn.Module, meta: dict) -> str:
    """SHA-256 over the model's state (names, dtypes, shapes and bytes of every tensor) and `meta` (input size,
    normalisation, class names), which together decide the exported file."""
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RouteUnavailable(Exception):
    """This route cannot run on this machine; the message says why (it is reported, not raised)."""


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


@torch.inference_mode()
def logits(route: Route, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Logits of every image, in batches of exactly `batch_size` (the last one padded with zeros), so a
    compiled route meets no new shape."""
    outputs = []
    device = torch.device("cuda" if route.device == "cuda" else "cpu")
    for chunk in images.split(batch_size):
        count = len(chunk)
        if count < batch_size:
            chunk = F.pad(chunk, (0, 0, 0, 0, 0, 0, 0, batch_size - count))
        chunk = chunk.to(device)
        if route.channels_last:
            chunk = chunk.contiguous(memory_format=torch.channels_last)
        outputs.append(route.module(chunk).float()[:count].cpu())
    return torch.cat(outputs)


def quality(route_logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Top-1 accuracy on the labels and top-1 agreement with the reference route's predictions."""
    predicted = route_logits.argmax(1)
    return {"top1": float((predicted == labels.cpu()).float().mean()),
            "agreement": float((predicted == reference_logits.argmax(1)).float().mean()),
            "max_abs_diff": float((route_logits - reference_logits).abs().max())}


@contextlib.contextmanager
def quiet_compiler_logs():
    """torch.compile logs, once per process, that it found no CUDA runtime when building its C++ kernels;
    on a CPU route that is expected, and the line is noise in a report."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def work_folder(path=None):
    """`path` if given (kept), else a temporary folder removed afterwards."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="cifar-lab-routes-") as folder:
        yield Path(folder)
