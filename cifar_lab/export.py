"""Export a checkpoint's model to a file that needs nothing else: ONNX, TorchScript or a PT2 archive.

- ONNX goes through `torch.onnx.export` (the `torch.export`-based exporter) with a dynamic batch
  dimension; the input resolution comes from the checkpoint's input record. The class names and the
  normalisation go into the model's `metadata_props` (ONNX IR spec, "Metadata").
- TorchScript (`torch.jit.trace`) carries them in `_extra_files`, and a PT2 archive
  (`torch.export.export` + `torch.export.save`) in `extra_files`, as the PyTorch docs describe for both.
  PyTorch now marks TorchScript deprecated in favour of `torch.export`; it is kept for runtimes that only
  read TorchScript (its deprecation warnings are silenced here, the choice being the user's), and pt2 is
  the PyTorch format to prefer.

Every export is validated before it is kept: the file's bytes are loaded back as `load` reads a file (ONNX
with ONNX Runtime's CPU execution provider), run on a batch of the test split and compared with the eager
fp32 model. Only when the largest absolute difference of the logits is within `TOLERANCE` are they written,
with `io.atomic_write` (a temporary file beside the destination, renamed into place); otherwise nothing is
written. A temporary file that a killed export left beside the destination is removed by the next export to
it.

`load(path)` reads any of the three back: the callable model plus its class names and input record (sizes,
normalisation, the dataset's conventions); `predictor(path)` makes an `inference.Predictor` of a checkpoint or of
any of the three, so that `cifar-lab predict` answers the same on either, through the same preparation.
"""
from __future__ import annotations

import contextlib
import io as _bytes_io
import json
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from .errors import UsageError
from .io import TMP_SUFFIX, atomic_write, make_folder

FORMATS = ("onnx", "torchscript", "pt2")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2"}
# The allowed max abs difference of the logits is TOLERANCE x max(1, largest |logit| of the eager model):
# fp32 logits of one network computed by different kernels (oneDNN, ONNX Runtime's MLAS) differ by
# rounding only, about 1e-6 of their scale for a ResNet-18; a wrong graph (a dropped layer, a swapped
# normalisation) misses 1e-4 by orders of magnitude.
TOLERANCE = 1e-4
METADATA_KEY = "cifar_lab"              # ONNX metadata_props key
EXTRA_FILE = "cifar_lab.json"           # TorchScript _extra_files / PT2 extra_files name
INPUT_NAME, OUTPUT_NAME = "images", "logits"
ONNX_OPSET = 18


class ExportError(UsageError):
    """An export that could not be made or did not validate; nothing was written."""


def metadata(state: dict) -> dict:
    """What a file needs to be used on its own: classes, input preparation, tensor names and layout."""
    from .config import from_dict
    from .engine.checkpoint import input_record

    config = from_dict(state["config"])
    names = list(state.get("class_names") or [str(i) for i in range(config.num_classes)])
    return {"model": config.model, "dataset": config.dataset, "num_classes": config.num_classes,
            "class_names": names, "input": input_record(state), "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "layout": "float32 NCHW, normalised with input.mean and input.std; output: logits"}


def example_input(resolution: int, batch: int = 2, channels: int = 3) -> torch.Tensor:
    # Batch 2, not 1: torch.export specialises a dimension of size 1, which would fix the batch.
    return torch.randn(batch, channels, resolution, resolution)


def input_channels(meta: Optional[dict]) -> int:
    """The channels the model takes (1 for the grey Fashion-MNIST benchmark networks), from its metadata."""
    return int(((meta or {}).get("input") or {}).get("channels", 3))


def onnx_bytes(model: torch.nn.Module, resolution: int, meta: Optional[dict] = None) -> bytes:
    """The ONNX model (weights inside, dynamic batch) as bytes, with `meta` in its metadata_props."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        example = example_input(resolution, channels=input_channels(meta))
        program = torch.onnx.export(model.eval(), (example,), input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
                                    opset_version=ONNX_OPSET, dynamo=True, verbose=False)
    except Exception as exc:  # an operator without an ONNX translation, a graph break, ...
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: "
                          f"{_first_line(exc)}); try --format pt2 or torchscript") from None
    proto = program.model_proto
    if meta is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return proto.SerializeToString()


def _torchscript_bytes(model, resolution, meta) -> bytes:
    with torch.no_grad(), _quiet_torchscript():
        traced = torch.jit.trace(model.eval(), example_input(resolution, channels=input_channels(meta)))
        buffer = _bytes_io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(meta)})
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_torchscript():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
        yield


def _pt2_bytes(model, resolution, meta) -> bytes:
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = example_input(resolution, channels=input_channels(meta))
    program = torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))
    buffer = _bytes_io.BytesIO()
    torch.export.save(program, buffer, extra_files={EXTRA_FILE: json.dumps(meta)})
    return buffer.getvalue()


def serialize(model: torch.nn.Module, fmt: str, resolution: int, meta: dict) -> bytes:
    """The exported file's bytes in format `fmt`, metadata included."""
    check_format(fmt)
    if fmt == "onnx":
        return onnx_bytes(model, resolution, meta)
    try:
        return (_torchscript_bytes if fmt == "torchscript" else _pt2_bytes)(model, resolution, meta)
    except Exception as exc:
        raise ExportError(f"{fmt} export failed ({type(exc).__name__}: {_first_line(exc)}); try another "
                          f"--format") from None


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")


@dataclass
class ExportedModel:
    """An exported file loaded back: call it on normalised float32 NCHW images to get logits."""

    format: str
    metadata: dict
    run: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images)

    @property
    def class_names(self) -> list[str]:
        return self.metadata["class_names"]

    @property
    def input_record(self) -> dict:
        """How images are prepared for this model (the checkpoint's input record; files of earlier versions
        completed with their dataset's conventions, `engine.checkpoint.complete`)."""
        from .engine.checkpoint import complete

        return complete(self.metadata["input"], self.metadata.get("dataset"))

    def preprocess(self, images) -> torch.Tensor:
        """Images of any size (a uint8 [B, 3, H, W] batch, or a list of paths, PIL images, arrays or uint8
        [3, H, W] tensors) -> what the model takes, prepared exactly as `inference.Predictor` prepares them
        (`inference.model_input`: the dataset's colour and polarity, fitted without stretching; normalisation)."""
        from .inference import model_input

        return model_input(images, self.input_record)

    def predictor(self):
        """An `inference.Predictor` around this file's model (on the CPU, where every format here runs)."""
        from .config import from_dict
        from .inference import Predictor

        meta = self.metadata
        config = from_dict({key: meta[key] for key in ("model", "dataset", "num_classes") if key in meta})
        return Predictor.of_model(self, self.class_names, self.input_record, config=config, device="cpu")

    @torch.inference_mode()
    def predict(self, images) -> list[str]:
        """Top-1 class name of each image (a uint8 [B, 3, H, W] batch or a list, as `preprocess` takes)."""
        return [self.class_names[i] for i in self(self.preprocess(images)).argmax(1).tolist()]


def file_kind(path) -> str:
    """"checkpoint" for a training checkpoint, else the export format ("onnx", "torchscript", "pt2") of a model
    file, from its contents where they tell (a torch zip archive holds `data.pkl` for a checkpoint, `code/`
    for TorchScript, `archive_format` for a PT2 archive) and from its suffix otherwise (an ONNX file is a
    protocol buffer, with no signature to read). A file that is none of them is "checkpoint", so that the
    checkpoint loader names what is wrong with it."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile):
            return "checkpoint"
        if any("/code/" in name for name in names):
            return "torchscript"
        if any(name.endswith("/archive_format") or name.endswith("/models/model.json") for name in names):
            return "pt2"
        return "checkpoint"
    return "onnx" if path.suffix == ".onnx" else "checkpoint"


def predictor(path, device: str = "auto"):
    """An `inference.Predictor` for `path`: a training checkpoint (`inference.Predictor(path)`) or a file this
    module wrote (`load`, run on the CPU), both preparing images through `inference.preparation`."""
    from .inference import Predictor

    kind = file_kind(path)
    if kind == "checkpoint":
        return Predictor(path, device=device)
    return load(path, kind).predictor()


def detect_format(path) -> str:
    """The format of an exported file, from its suffix or else its contents."""
    path = Path(path)
    by_suffix = {".onnx": "onnx", ".pt2": "pt2", ".pt": "torchscript", ".ts": "torchscript",
                 ".torchscript": "torchscript"}
    if path.suffix in by_suffix:
        return by_suffix[path.suffix]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        return "torchscript" if any("/code/" in name for name in names) else "pt2"
    return "onnx"


def onnx_session(source, threads: Optional[int] = None, providers=None):
    """An ONNX Runtime session on a file or bytes (CPU execution provider unless `providers` says)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    # ONNX Runtime's worker threads spin after each run by default, waiting for the next; on a machine with
    # few cores they take the CPU from whatever runs next (another route, PyTorch's own threads), so they
    # sleep instead (ONNX Runtime docs, "Thread management": session.intra_op.allow_spinning).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(source) if isinstance(source, Path) else source
    return ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])


def onnx_runner(session) -> Callable[[torch.Tensor], torch.Tensor]:
    input_name = session.get_inputs()[0].name

    def run(images: torch.Tensor) -> torch.Tensor:
        array = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(session.run(None, {input_name: array})[0])

    return run


def load(path, fmt: Optional[str] = None) -> ExportedModel:
    """Load an exported file and its metadata; a file that is not one is a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file; export one with `cifar-lab export --checkpoint C "
                         f"--format onnx --out {path}`")
    fmt = fmt or detect_format(path)
    check_format(fmt)
    try:
        return _read(path.read_bytes(), fmt)
    except OSError as exc:
        raise UsageError(f"{path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:
        raise UsageError(f"{path} cannot be read as a cifar-lab {fmt} export ({type(exc).__name__}); "
                         f"export it again") from None


def _read(payload: bytes, fmt: str) -> ExportedModel:
    """An exported model from the bytes of its file (what `load` reads, and what `export` validates)."""
    if fmt == "onnx":
        session = onnx_session(payload)
        meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        return ExportedModel(fmt, meta, onnx_runner(session))
    extra = {EXTRA_FILE: ""}
    if fmt == "torchscript":
        with _quiet_torchscript():
            module = torch.jit.load(_bytes_io.BytesIO(payload), map_location="cpu", _extra_files=extra)
    else:
        module = torch.export.load(_bytes_io.BytesIO(payload), extra_files=extra).module()
    meta = json.loads(extra[EXTRA_FILE])

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(images.to(torch.float32))

    return ExportedModel(fmt, meta, run)


def test_split(state: dict, data_root=None, limit: Optional[int] = None, calibration: int = 0):
    """The checkpoint's test split as (images, labels) tensors on the CPU, normalised as its test loader
    does; with `calibration` > 0 also that many training images (the training loader's augmentation)."""
    from .config import from_dict
    from .data import registry as data_registry

    config = from_dict(state["config"])
    config.progress, config.device = False, "cpu"
    if data_root is not None:
        config.data_root = str(data_root)
    bundle = data_registry.build(config, torch.device("cpu"), torch.Generator().manual_seed(0))
    images, labels = _take(bundle.test_loader, limit)
    if not calibration:
        return images, labels
    return images, labels, _take(bundle.train_loader, calibration)[0]


def _take(loader, limit: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, count = [], [], 0
    for x, y in loader:
        images.append(x.contiguous())
        labels.append(y)
        count += len(y)
        if limit is not None and count >= limit:
            break
    if not images:
        raise UsageError("the checkpoint's dataset yields no images; check data_root and the subset settings")
    images, labels = torch.cat(images), torch.cat(labels)
    return (images, labels) if limit is None else (images[:limit], labels[:limit])


@torch.inference_mode()
def compare(reference: torch.nn.Module, exported: ExportedModel, images: torch.Tensor) -> tuple[float, float]:
    """(max abs difference of the logits, the logits' scale: max(1, largest |eager logit|))."""
    expected = reference(images).float()
    got = exported(images).float()
    scale = max(1.0, float(expected.abs().max()))
    if got.shape != expected.shape:
        return float("inf"), scale
    return float((got - expected).abs().max()), scale


def export(checkpoint_path, fmt: str, out, *, images: int = 64, tolerance: float = TOLERANCE,
           data_root=None) -> dict:
    """Export a checkpoint's model to `out` in format `fmt`, validate it, and keep it only if it passes.

    Returns a plain dict: path, format, size, the max abs difference to eager fp32 on `images` test
    images and what was allowed (`tolerance` x the logits' scale, see `TOLERANCE`). A failure raises a
    one-line `ExportError` and leaves no file at `out` (an existing file there is replaced only by a
    validated export).
    """
    from .engine import checkpoint

    check_format(fmt)
    if not tolerance > 0 or images < 1:
        raise UsageError(f"--tolerance must be positive and --images at least 1 (got {tolerance}, {images})")
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give the file to write, e.g. {out / ('model' + SUFFIXES[fmt])}")
    state = checkpoint.load(checkpoint_path)
    model = checkpoint.load_model(state, "cpu")
    meta = metadata(state)
    batch, _ = test_split(state, data_root=data_root, limit=images)
    payload = serialize(model, fmt, meta["input"]["resolution"], meta)
    try:
        exported = _read(payload, fmt)
    except Exception:
        raise ExportError(f"the {fmt} export could not be read back; nothing written") from None
    if exported.metadata != json.loads(json.dumps(meta)):
        raise ExportError(f"the {fmt} file does not carry the checkpoint's metadata; nothing written")
    difference, scale = compare(model, exported, batch)
    allowed = tolerance * scale
    if not difference <= allowed:
        raise ExportError(f"the {fmt} export does not match the eager model: max abs difference "
                          f"{difference:.3g} > {allowed:.3g} (tolerance {tolerance:g} x logit scale "
                          f"{scale:.3g}) on {len(batch)} test images; nothing written")
    make_folder(out.parent)
    remove_stale_temporaries(out)
    atomic_write(out, lambda handle: handle.write(payload))
    return {"path": str(out), "format": fmt, "size_mb": out.stat().st_size / 1e6, "max_abs_diff": difference,
            "allowed_diff": allowed, "tolerance": tolerance, "logit_scale": scale, "images": len(batch),
            "model": meta["model"],
            "resolution": meta["input"]["resolution"], "classes": len(meta["class_names"])}


def remove_stale_temporaries(out) -> list[Path]:
    """Delete the temporary files that a killed write of `out` left beside it (`io.atomic_write` names them
    `.NAME.XXXXXXXX.tmp`); other files in the folder, the user's own `.tmp` files included, are left alone."""
    out = Path(out)
    pattern = re.compile(rf"\.{re.escape(out.name)}\.[A-Za-z0-9_]{{8}}{re.escape(TMP_SUFFIX)}")
    removed = []
    for stale in out.parent.iterdir():
        if pattern.fullmatch(stale.name) and stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else ""
