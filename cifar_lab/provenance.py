"""Where a result came from: the code (commit, dirty tree), the software versions, the hardware, the command.

`collect()` returns one plain dict, `finish(record)` adds the end time, and `write(record, folder)` saves it as
`folder/environment.json`. Every `cifar-lab train` run folder, every checkpoint (key "environment") and every
notebook run of `runner.run_notebook` carries this record, so a number can always be traced to what made it.

Nothing personal goes into it: the home folder becomes "~" and the user name "<user>" in every string, and
neither the host name nor any environment variable other than CUDA_VISIBLE_DEVICES is recorded.
"""
from __future__ import annotations

import getpass
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from .io import atomic_write_text

FILE_NAME = "environment.json"
UNKNOWN = "unknown"
# The folder holding the `cifar_lab` package: the repository root for a clone installed with `pip install -e`.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
# System accounts are not personal, and scrubbing a word as common as "root" would mangle "data-root".
_NOT_PERSONAL = {"root"}


def collect(parameters: Optional[dict] = None, world_size: int = 1) -> dict:
    """The provenance of a run starting now. `parameters`: a notebook run's parameters (else None)."""
    import torch

    commit, dirty = git_state()
    record = {
        "commit": commit,
        "dirty": dirty,
        "versions": software_versions(torch),
        **device_record(torch),
        "cpu": cpu_model(),
        # What decides CPU speed ratios: the vector instructions torch uses and whether bf16 runs natively.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
        "torch_threads": torch.get_num_threads(),
        "world_size": world_size,
        "command": command_line(),
        "parameters": parameters,
        "start_utc": utc_now(),
        "end_utc": None,
    }
    record["sessions"] = [session(record)]
    return scrub(record)


# What each start of a run records on its own: a resumed run may continue on another commit or machine.
SESSION_KEYS = ("command", "start_utc", "end_utc", "commit", "dirty", "device", "world_size")


def session(record: dict) -> dict:
    """One start of a run, from a `collect` record (or an older record that has no list of sessions)."""
    return {key: record.get(key) for key in SESSION_KEYS}


def sessions(record: dict) -> list[dict]:
    """Every start of the run `record` describes, the first one first."""
    return list(record.get("sessions") or [session(record)])


def resumed(earlier: Optional[dict], now: dict) -> dict:
    """The record of a run continued now: the first start's command, time and code stay at the top, and `now`
    (a `collect` record) is added as one more session. Without an `earlier` record, `now` itself."""
    if not earlier:
        return now
    return {**earlier, "end_utc": None, "sessions": [*sessions(earlier), *sessions(now)]}


def command_line(argv: Optional[list[str]] = None) -> Optional[str]:
    """The command that started this process, as a user would type it: `cifar-lab train ...` rather than the
    full path of the installed script."""
    argv = list(sys.argv if argv is None else argv)
    if not argv or not argv[0]:
        return None  # an interactive interpreter
    program = Path(argv[0])
    if program.name == "__main__.py" and program.parent.name == "cifar_lab":
        argv[0:1] = ["python", "-m", "cifar_lab"]
    elif program.name == "cifar-lab":
        argv[0] = "cifar-lab"
    return shlex.join(argv)


def finish(record: dict) -> dict:
    """A copy of `record` with the end time set, on the record and on its latest session."""
    end = utc_now()
    starts = sessions(record)
    return {**record, "end_utc": end, "sessions": [*starts[:-1], {**starts[-1], "end_utc": end}]}


def write(record: dict, folder) -> dict:
    """Save `record` as `folder/environment.json` (atomically) and return it."""
    atomic_write_text(Path(folder) / FILE_NAME, json.dumps(record, indent=2, default=str) + "\n")
    return record


def read(folder) -> Optional[dict]:
    """`folder/environment.json`, or None when there is none (or it is not JSON)."""
    path = Path(folder) / FILE_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(folder: Path = PACKAGE_PARENT) -> tuple[str, Any]:
    """(commit, dirty) of the checkout `folder` is the root of; ("unknown", "unknown") otherwise.

    Only the repository rooted at the package's parent counts: an installed package inside some other
    repository (a virtual environment kept in a project folder) must not report that project's commit.
    """
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != folder.resolve():
        return UNKNOWN, UNKNOWN
    commit = _git(folder, "rev-parse", "HEAD")
    status = _git(folder, "status", "--porcelain")
    # Untracked files count: an untracked module can change what runs.
    return commit or UNKNOWN, UNKNOWN if status is None else bool(status)


def _git(folder: Path, *args: str) -> Optional[str]:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # git missing, or hanging on a network file system
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def software_versions(torch) -> dict:
    from . import __version__

    cuda = torch.cuda.is_available()
    try:
        import torchvision
        vision = torchvision.__version__
    except ImportError:
        vision = None
    return {
        "cifar_lab": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": vision, "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
    }


def device_name(device) -> str:
    """The one name of a device in every record: the CUDA device's name, "Apple MPS", or the CPU with the
    threads PyTorch computes with ("cpu (x86_64, 8 threads)"), the figure a CPU timing depends on."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    threads = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {threads} thread{'s' if threads != 1 else ''})"


def device_record(torch) -> dict:
    """The accelerators this process sees: CUDA device names and count, or the CPU (`device_name`)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = cuda_device_names(torch, count)
    if not names:
        device = device_name("cpu")
    elif len(set(names)) == 1:
        device = names[0] if count == 1 else f"{count} x {names[0]}"
    else:
        device = ", ".join(names)
    return {"device": device, "devices": names or ["cpu"], "device_count": count,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def cuda_device_names(torch, count: int) -> list[str]:
    """The names of the `count` visible CUDA devices. Asking torch creates a CUDA context (hundreds of MB on
    the GPU) in a process that may never use the GPU (the parent of a notebook run or of a sweep's workers),
    so nvidia-smi answers when this process has not initialised CUDA yet."""
    if count == 0:
        return []
    if not torch.cuda.is_initialized():
        names = _nvidia_smi_names()
        if names is not None and len(names) == count:
            return names
    return [device_name(f"cuda:{index}") for index in range(count)]


def _nvidia_smi_names() -> Optional[list[str]]:
    """Device names from nvidia-smi, restricted to CUDA_VISIBLE_DEVICES when it lists indices; None otherwise."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    by_index = dict(line.split(", ", 1) for line in done.stdout.strip().splitlines() if ", " in line)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    wanted = [item.strip() for item in (visible or "").split(",") if item.strip()]
    if visible is not None and not all(item in by_index for item in wanted):
        return None  # UUIDs or MIG names: let torch answer
    names = [by_index[item] for item in wanted] if visible is not None else list(by_index.values())
    # nvidia-smi numbers devices in PCI bus order, CUDA (by default) fastest first: on a machine with mixed
    # models the two orders can differ, and only torch knows which name goes with which CUDA index.
    if len(set(names)) > 1 and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        return None
    return names


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def scrub(value: Any) -> Any:
    """`value` with the home folder replaced by "~" and the user name by "<user>" in every string."""
    home = os.path.expanduser("~").rstrip("/")
    user = _user_name()
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(user)}(?![A-Za-z0-9_])") if user else None

    def clean(item):
        if isinstance(item, str):
            if len(home) > 1:  # a home of "/" would turn every path into "~"
                item = item.replace(home, "~")
            return pattern.sub("<user>", item) if pattern else item
        if isinstance(item, dict):
            return {clean(key): clean(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(inner) for inner in item]
        return item

    return clean(value)


def _user_name() -> Optional[str]:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no password entry and no LOGNAME/USER in a container
        return None
    return None if not name or name in _NOT_PERSONAL else name


def describe(record: Optional[dict]) -> list[str]:
    """A few readable lines about `record`, for `cifar-lab eval` and the reproduction report."""
    if not record:
        return ["provenance: not recorded (the checkpoint was written before runs recorded their environment)"]
    versions = record.get("versions", {})
    dirty = record.get("dirty")
    tree = {True: " (uncommitted changes)", False: "", UNKNOWN: " (tree state unknown)"}.get(dirty, "")
    cuda = f", CUDA {versions['cuda']}, cuDNN {versions['cudnn']}" if versions.get("cuda") else ""
    lines = [f"commit: {record.get('commit', UNKNOWN)}{tree}",
             f"device: {record.get('device', UNKNOWN)} (CPU {record.get('cpu', UNKNOWN)}, "
             f"{record.get('cpu_capability', '?')}{', bf16' if record.get('cpu_bf16') else ''}, "
             f"{record.get('torch_threads', '?')} torch threads)",
             f"software: torch {versions.get('torch')}, torchvision {versions.get('torchvision')}, Python "
             f"{versions.get('python')}{cuda}, cifar_lab {versions.get('cifar_lab')}",
             f"started: {record.get('start_utc')}" + (f", ended: {record['end_utc']}" if record.get("end_utc") else "")]
    starts = record.get("sessions") or []
    if len(starts) > 1:
        commits = {str(start.get("commit")) for start in starts}
        lines.append(f"sessions: {len(starts)} (resumed {len(starts) - 1} time{'s' if len(starts) > 2 else ''}, "
                     f"last start {starts[-1].get('start_utc')}"
                     f"{', on several commits' if len(commits) > 1 else ''})")
    if record.get("parameters"):
        lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in record["parameters"].items()))
    elif record.get("command"):
        lines.append(f"command: {record['command']}")
    return lines


def short_commit(record: Optional[dict]) -> str:
    """The commit abbreviated to 7 characters, with "+dirty" for uncommitted changes."""
    if not record:
        return UNKNOWN
    commit = str(record.get("commit", UNKNOWN))
    short = commit[:7] if commit != UNKNOWN else commit
    return short + ("+dirty" if record.get("dirty") is True else "")
