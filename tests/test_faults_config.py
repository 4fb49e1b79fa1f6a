"""Configuration values out of their range: one line on stderr, exit code 2, and no run folder, before any data
is read or any memory allocated for images."""
import subprocess
import sys
from pathlib import Path

import pytest

from cifar_lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "cifar10-simplecnn", "--set", "dataset=synthetic", "synthetic_train_size=40",
        "synthetic_test_size=20", "epochs=1"]


@pytest.mark.parametrize("setting, says", [
    ("momentum=-1", "momentum must be in [0, 1), got -1.0"),
    ("momentum=1", "momentum must be in [0, 1), got 1.0"),
    ("onecycle_pct_start=5", "onecycle_pct_start must be in (0, 1)"),
    ("onecycle_pct_start=0", "onecycle_pct_start must be in (0, 1)"),
    (f"seed={2 ** 70}", "seed must be between 0 and 4294967295"),
    ("seed=-1", "seed must be between 0 and 4294967295"),
    ("num_classes=1000", "num_classes=1000: the synthetic dataset has 2 to 100 classes"),
    ("image_size=5000", "image_size=5000 is above 1024 px"),
    ("eval_resize=4096", "eval_resize=4096 is above 1024 px"),
])
def test_out_of_range_values_are_one_line_and_write_nothing(tmp_path, capsys, setting, says):
    out, data = tmp_path / "run", tmp_path / "data"
    code = main(["train", *TINY, f"data_root={data}", setting, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("cifar-lab train: error: ") and says in err, err
    assert not out.exists() and not data.exists()


def test_the_largest_seed_is_accepted(tmp_path):
    from cifar_lab.config import TrainConfig, validate

    validate(TrainConfig(seed=2**32 - 1))
    validate(TrainConfig(seed=0, momentum=0.0, onecycle_pct_start=0.99, input_size=1024))


def test_a_huge_input_size_is_refused_before_anything_is_allocated(tmp_path):
    """Before, this ran out of memory in the first batch and left config.json behind: a separate process, so
    that such a failure cannot take the test session with it."""
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", *TINY, f"data_root={tmp_path / 'data'}",
                           "input_size=100000", "--out", str(tmp_path / "run")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "input_size=100000 is above 1024 px" in lines[0], done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
