"""Every benchmark shows its progress on a terminal and writes none into a pipe or a log file, and names its
device as `provenance.device_name` does."""
import io
import subprocess
import sys

import pytest

from cifar_lab import bench
from cifar_lab.provenance import device_name


class Terminal(io.StringIO):
    """stderr on a terminal: what a progress bar writes is kept."""

    def isatty(self):
        return True


def test_the_bar_shows_on_a_terminal_only():
    """Mutants: the bar disabled only by the caller's flag (bars in redirected logs), or never shown."""
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "stderr", stream)
            with bench.progress(total=3, desc="counting", unit="run") as bar:
                bar.update(1)
        assert ("counting" in stream.getvalue()) is shown
    terminal = Terminal()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        with bench.progress(total=3, desc="switched off", enabled=False) as bar:
            bar.update(1)
    assert terminal.getvalue() == ""


def on_a_terminal(monkeypatch) -> Terminal:
    """stderr replaced by a terminal; called inside a test body, since pytest sets its own capture of stderr
    between a fixture's setup and the test."""
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def test_bench_data_shows_progress_and_names_its_device(tmp_path, monkeypatch):
    """Mutants: `bench data` silent on a terminal; its device recorded as `str(device)` ("cpu")."""
    from cifar_lab.bench import data

    terminal = on_a_terminal(monkeypatch)
    result = data.run(data_root=str(tmp_path), images=128, batch_size=64, workers=0, repeats=1, device="cpu")
    assert "bench data" in terminal.getvalue()
    assert result["device"] == device_name("cpu")


def test_bench_train_shows_progress_and_names_its_device(tmp_path, monkeypatch):
    """Mutants: `bench train` silent for its whole run; its device recorded as `str(device)`."""
    from cifar_lab.bench import train

    terminal = on_a_terminal(monkeypatch)
    result = train.run(model="simple_cnn", data_root=str(tmp_path), steps=2, repeats=1, workers=0, batch_size=8,
                       device="cpu", precision="fp32")
    assert "bench train" in terminal.getvalue()
    assert result["device"] == device_name("cpu")


def test_bench_ast_shows_progress_and_names_its_device(tmp_path, monkeypatch):
    """Mutants: `bench ast` silent; its device recorded as `str(device)`."""
    from cifar_lab.bench import ast

    terminal = on_a_terminal(monkeypatch)
    result = ast.run(model="simple_cnn", batch_size=8, batches=2, repeats=1, target=0.5, precision="fp32",
                     device="cpu", data_root=str(tmp_path))
    assert "repeat 1/1: random" in terminal.getvalue()
    assert result["device"] == device_name("cpu")


def test_bench_imagenet_data_shows_progress(tmp_path, monkeypatch):
    """Mutant: `bench imagenet-data` silent on a terminal."""
    from cifar_lab.bench import imagenet

    terminal = on_a_terminal(monkeypatch)
    imagenet.run(data_root=str(tmp_path), images=16, px=48, size=32, batch_size=8, batches=1, repeats=1, workers=0)
    assert "repeat 1/1: cpu" in terminal.getvalue()


def test_a_bench_command_in_a_pipe_writes_no_progress(tmp_path):
    """Mutant: a bar drawn into a pipe (carriage returns filling a log file)."""
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "data", "--data-root", str(tmp_path),
                           "--images", "256", "--repeats", "1", "--workers", "0"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "" and "ratio" in done.stdout
