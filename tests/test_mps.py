"""Apple silicon (MPS): device selection, precision and the MPS branches, with the hardware mocked.

This machine has no MPS device, so these tests replace PyTorch's availability checks and MPS calls; what they
show is that every device-conditional branch takes the MPS path when MPS is there, and refuses cleanly when it
is not. Training on real Apple hardware is untested (the reproduction page says so).
"""
import subprocess
import sys

import pytest
import torch

from cifar_lab import measure, provenance
from cifar_lab.engine import runtime
from cifar_lab.errors import UsageError


@pytest.fixture
def apple_silicon(monkeypatch):
    """A machine with MPS and without CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    return monkeypatch


def test_auto_picks_mps_when_there_is_no_cuda(apple_silicon):
    assert runtime.resolve_device("auto") == torch.device("mps")
    assert runtime.resolve_device("mps") == torch.device("mps")


def test_auto_prefers_cuda_over_mps(apple_silicon):
    apple_silicon.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("cuda")


def test_auto_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UsageError, match="device=mps"):
        runtime.resolve_device("mps")


def test_precision_on_mps_is_fp16_and_refuses_bf16_where_metal_lacks_it(apple_silicon):
    mps = torch.device("mps")
    assert runtime.resolve_precision("auto", mps) == "fp16"
    assert runtime.resolve_precision("fp32", mps) == "fp32"
    apple_silicon.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: False, raising=False)
    with pytest.raises(UsageError, match="bf16"):
        runtime.resolve_precision("bf16", mps)
    apple_silicon.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: (major, minor) <= (14, 0),
                          raising=False)
    assert runtime.resolve_precision("bf16", mps) == "bf16"


def test_timers_wait_for_mps_and_make_no_cuda_call(apple_silicon):
    calls = []
    apple_silicon.setattr(torch.mps, "synchronize", lambda: calls.append("mps"))

    def no_cuda(*args, **kwargs):
        raise AssertionError("a CUDA call on the MPS path")

    apple_silicon.setattr(torch.cuda, "synchronize", no_cuda)
    apple_silicon.setattr(torch.cuda, "get_device_name", no_cuda)
    measure.sync("mps")
    assert calls == ["mps"]
    assert measure.timed(lambda: 8, "mps") > 0
    assert calls == ["mps"] * 3
    assert provenance.device_name("mps") == "Apple MPS"


def test_rng_state_carries_the_mps_generator(apple_silicon):
    saved = torch.tensor([1, 2, 3], dtype=torch.uint8)
    restored = []
    apple_silicon.setattr(torch.mps, "get_rng_state", lambda: saved)
    apple_silicon.setattr(torch.mps, "set_rng_state", lambda state: restored.append(state))
    state = runtime.rng_state(None)
    assert torch.equal(state["mps"], saved)
    runtime.set_rng_state(state, None)
    assert restored and torch.equal(restored[0], saved)


def test_device_mps_without_mps_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-simplecnn", "--set",
                           "dataset=synthetic", "epochs=1", "device=mps", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "device=mps" in lines[0], done.stderr
    assert not out.exists()
