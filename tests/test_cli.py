"""The `cifar-lab` command as a user runs it: outputs on success, one-line errors and exit 2 on bad input."""
import json
import subprocess
import sys

import pytest

from cifar_lab.data import synthetic


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("runs") / "simplecnn"
    done = cli("train", "--preset", "cifar10-simplecnn", "--set", "dataset=synthetic", "epochs=3",
               f"data_root={data_root}", "progress=false", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_train_writes_every_output_and_learns(trained_run):
    for name in ("config.json", "metrics.csv", "summary.json", "best.pt", "last.pt"):
        assert (trained_run / name).is_file()
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["best_acc"] >= 0.9 and summary["epochs"] == 3 and summary["params"] == 620_362
    for key in ("final_acc", "wall_seconds", "device"):
        assert key in summary
    header = (trained_run / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds"):
        assert column in header
    assert len((trained_run / "metrics.csv").read_text().splitlines()) == 4


def test_eval_reports_top1_and_top5(trained_run, tmp_path):
    report = tmp_path / "eval.json"
    done = cli("eval", "--checkpoint", str(trained_run / "best.pt"), "--json", str(report))
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    summary = json.loads((trained_run / "summary.json").read_text())
    assert result["top1"] == pytest.approx(summary["best_acc"], abs=1e-6) and result["top5"] >= result["top1"]
    assert "top-1" in done.stdout and "top-5" in done.stdout


def test_rerunning_into_a_finished_run_asks_for_resume(trained_run):
    done = cli("train", "--preset", "cifar10-simplecnn", "--out", str(trained_run))
    assert done.returncode == 2 and "--resume" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--set", "no_such_key=1"], "unknown config key 'no_such_key'"),
    (["--set", "epochs=many"], "epochs='many' is not a valid int"),
    (["--set", "model=vgg99"], "unknown model 'vgg99'"),
    (["--set", "dataset=mnist"], "unknown dataset 'mnist'"),
    (["--set", "epochs"], "--set expects key=value"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    done = cli("train", "--preset", "cifar10-simplecnn", *args, "--out", str(out))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and not out.exists()


def test_unknown_preset_lists_the_presets(tmp_path):
    done = cli("train", "--preset", "cifar10-vgg", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "cifar10-resnet18" in done.stderr and not (tmp_path / "run").exists()


def test_missing_dataset_says_which_command_fixes_it(tmp_path):
    # download=false: the machine may have no internet; the message must name the path and the command.
    done = cli("train", "--preset", "cifar10-simplecnn", "--set", f"data_root={tmp_path / 'empty'}",
               "download=false", "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "cifar-lab data download cifar10" in done.stderr and str(tmp_path / "empty") in done.stderr
    assert not (tmp_path / "run").exists()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    broken = tmp_path / "best.pt"
    broken.write_bytes(b"not a checkpoint")
    done = cli("eval", "--checkpoint", str(broken))
    assert done.returncode == 2 and "corrupt" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_data_download_from_a_mirror_then_nothing_to_do(tmp_path):
    archive, md5 = synthetic.write_archive(tmp_path / "gen", tmp_path / "mirror", 10, n_train=100, n_test=20)
    root = tmp_path / "root"
    done = cli("data", "download", "cifar10", "--root", str(root), "--url", archive.as_uri(), "--md5", md5)
    assert done.returncode == 0, done.stderr
    assert "100 train" in done.stdout
    again = cli("data", "download", "cifar10", "--root", str(root))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_data_synthetic_writes_the_pickle_layout(tmp_path):
    done = cli("data", "synthetic", "--root", str(tmp_path), "--classes", "100", "--train-size", "500",
               "--test-size", "100")
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.glob("synthetic-c100-*/cifar-100-python/train"))


def test_unknown_subcommand_is_one_line():
    done = cli("trian")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_help_lists_the_commands():
    done = cli("--help")
    assert done.returncode == 0
    for command in ("train", "eval", "data", "bench"):
        assert command in done.stdout
