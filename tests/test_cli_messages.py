"""What the command line says when something goes wrong or stops: each message names the option the user
typed, the state things are really in, a command that works from where the user is, and the way on."""
import gzip
import json
import shlex
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cifar_lab.cli import main
from cifar_lab.cli.run import paths_from_here
from cifar_lab.data import fashion_mnist
from data_files import random_garments, write_fashion_mnist, write_idx  # tests/ is on sys.path

SMALL = ["dataset=synthetic", "train_subset=320", "test_subset=100", "progress=false", "device=cpu"]


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cli-messages-data"))


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail as on a machine without network access."""
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)


@pytest.fixture
def no_debian_files(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(tmp_path / "no-debian-files"))


# --- resuming ----------------------------------------------------------------------------------------------------

def test_resume_from_a_missing_file_names_resume_from_and_the_path(tmp_path, capsys):
    """Mutant caught: the message speaking of `--resume` (the other option) when the user gave --resume-from."""
    missing = tmp_path / "run" / "epoch_003.pt"
    code = main(["train", "--resume-from", str(missing)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "--resume-from" in line and str(missing) in line, line
    assert "--resume:" not in line and not (tmp_path / "run").exists()


def test_ctrl_c_prints_the_command_that_resumes_and_the_resumed_run_says_where_it_starts(tmp_path, data_root,
                                                                                        capsys, monkeypatch):
    """Mutants caught: the interrupt line without the command that continues the run (or with one that does
    not work, e.g. without --resume), the exit status other than 130, and a resumed run that does not say at
    which epoch it starts. Ctrl-C is a KeyboardInterrupt raised after the first epoch's checkpoint, as a real
    one arriving between epochs would be."""
    import cifar_lab.engine
    from cifar_lab.engine import trainer

    def interrupt_after_first_epoch(row):
        raise KeyboardInterrupt

    monkeypatch.setattr(cifar_lab.engine, "train",
                        lambda config, out, **kw: trainer.train(config, out, on_epoch_end=interrupt_after_first_epoch,
                                                                **kw))
    out = tmp_path / "run"
    code = main(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}", "epochs=3",
                 "--out", str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == 130 and "interrupted" in line, line
    command = shlex.split(line.split("continue the run with: ")[1])
    assert command[:2] == ["cifar-lab", "train"] and "--resume" in command, command

    monkeypatch.setattr(cifar_lab.engine, "train", trainer.train)
    assert main(command[1:]) == 0
    printed = capsys.readouterr().out
    assert "resuming at epoch 2 of 3" in printed, printed
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 3


def test_ctrl_c_before_any_checkpoint_says_there_is_nothing_to_resume(tmp_path, data_root, capsys, monkeypatch):
    """Mutant caught: a resume command printed although no checkpoint was kept (running it would fail with
    "last.pt does not exist")."""
    from cifar_lab.engine import trainer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_one_epoch", interrupted)
    out = tmp_path / "run"
    code = main(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}",
                 "--out", str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == 130 and "nothing to continue" in line and "--resume" not in line, line
    assert not out.exists()


# --- Fashion-MNIST: messages by the real state ---------------------------------------------------------------------

@pytest.mark.parametrize("download", ["true", "false"])
def test_missing_fashion_mnist_is_worded_by_whether_a_download_was_tried(tmp_path, capsys, offline, no_debian_files,
                                                                           download):
    """Mutant caught: "run with --set download=true" suggested after download=true was given and the download
    failed (the old message), or not suggested when download was false."""
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["train", "--preset", "fmnist-simplecnn", "--set", f"data_root={empty}", f"download={download}",
                 "--out", str(tmp_path / "run")])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "sudo apt-get install dataset-fashion-mnist" in line, line
    if download == "true":
        assert "download failed" in line and "network" in line and "--set download=true" not in line, line
    else:
        assert "--set download=true" in line and "download failed" not in line, line
    assert list(empty.iterdir()) == [] and not (tmp_path / "run").exists()


def test_data_download_fashion_mnist_uses_the_debian_files(tmp_path, capsys, monkeypatch, offline):
    """Mutant caught: `data download fashion-mnist` ignoring the installed Debian files and downloading (here the
    network is down, so that fails), or reporting counts it did not read from the files."""
    images_train, _ = random_garments(30, 0)
    images_test, _ = random_garments(20, 1)
    folder = write_fashion_mnist(tmp_path / "debian", images_train, images_test)
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
    root = tmp_path / "root"
    assert main(["data", "download", "fashion-mnist", "--root", str(root)]) == 0
    printed = capsys.readouterr().out
    assert str(folder) in printed and "30 train + 20 test images" in printed and "nothing to download" in printed
    assert not root.exists()


def test_data_download_fashion_mnist_finds_torchvisions_copy(tmp_path, capsys, offline, no_debian_files):
    """Mutant caught: an existing torchvision copy under --root reported as downloaded, or fetched again."""
    root = tmp_path / "root"
    raw = fashion_mnist.torchvision_raw(root)
    raw.mkdir(parents=True)
    for train, n in ((True, 40), (False, 10)):
        images, labels = random_garments(n, int(train))
        image_file, label_file = fashion_mnist.FILES[train]
        for name, array in ((image_file, images), (label_file, labels)):
            write_idx(tmp_path / name, array)
            (raw / name[:-3]).write_bytes(gzip.decompress((tmp_path / name).read_bytes()))
    assert main(["data", "download", "fashion_mnist", "--root", str(root)]) == 0
    printed = capsys.readouterr().out
    assert "already at" in printed and str(raw) in printed and "40 train + 10 test images" in printed, printed


def test_data_download_fashion_mnist_failure_names_the_package(tmp_path, capsys, offline, no_debian_files):
    """Mutants caught: a failed download reported as a traceback or as several lines, without the apt-get
    command that installs the files, or leaving the folders it created behind."""
    root = tmp_path / "root"
    code = main(["data", "download", "fashion-mnist", "--root", str(root)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "sudo apt-get install dataset-fashion-mnist" in line and "download failed" in line, line
    assert not root.exists()


def test_data_download_refuses_an_unknown_dataset_with_the_list(capsys):
    """Mutant caught: an unknown name sent on to the CIFAR code (a KeyError), or a list without fashion-mnist."""
    assert main(["data", "download", "mnist"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "mnist" in line and "fashion-mnist" in line and "cifar10" in line, line


# --- summary ------------------------------------------------------------------------------------------------------

def test_summary_prints_the_mult_adds_as_a_count_not_as_an_enum(tmp_path, capsys):
    """Mutant caught: torchinfo's table printed as it comes, "Total mult-adds (Units.MEGABYTES): 10.91": an enum's
    repr, and a unit of bytes for a count of operations."""
    report = tmp_path / "summary.json"
    assert main(["summary", "--model", "simple_cnn", "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    macs = json.loads(report.read_text())["macs"]
    assert "Units." not in printed and "MEGABYTES" not in printed
    line = next(line for line in printed.splitlines() if line.startswith("Total mult-adds"))
    assert f"{macs:,}" in line, line


# --- notebook runs: paths said from where the user is -------------------------------------------------------------

FAILING_NOTEBOOK = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

```{code-cell} ipython3
:tags: [parameters]

out_dir = "x"
data_root = "../data"
steps = 1
```

```{code-cell} ipython3
from cifar_lab.data import cifar

cifar.load_split(cifar.SPECS["cifar10"], data_root, True)
```
"""


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A folder with notebooks/tiny.md, whose data_root is ../data as the book's chapters have it; the user
    works in the folder above notebooks/, as in the repository root."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "tiny.md").write_text(FAILING_NOTEBOOK)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_suggests_a_root_that_is_right_from_where_the_user_runs_it(book, capsys):
    """Mutant caught: the notebook's own `--root ../data` (and "not found at ../data/...") passed on; from the
    repository root it points outside the repository (the notebook ran in notebooks/, where ../data is the
    repository's data/)."""
    code = main(["run", "notebooks/tiny.md", "--out", "out"])
    line = one_line(capsys.readouterr().err)
    assert code == 1 and "cifar-lab data download cifar10 --root data`" in line, line
    assert "../data" not in line


def test_sweep_suggests_a_root_that_is_right_from_where_the_user_runs_it(book, capsys):
    """Mutant caught: the sweep's failure passed on with the notebook's `--root ../data`."""
    code = main(["sweep", "notebooks/tiny.md", "--grid", "steps=1", "--out", "sweep"])
    err = capsys.readouterr().err
    assert code == 1 and "cifar-lab data download cifar10 --root data`" in err, err
    assert "../data" not in err


def test_a_root_outside_the_current_folder_is_given_as_an_absolute_path(tmp_path, monkeypatch):
    """Mutant caught: a path relative to the current folder that climbs out of it (`../../..`), which breaks as
    soon as the user changes folder; outside the current folder the path is absolute. An absolute path, and a
    parameter's value (data_root=..., relative to the notebook's folder as a -p value is), are left alone."""
    notebook = tmp_path / "book" / "notebooks" / "tiny.md"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    message = ("cifar10 not found at ../data/cifar-10-batches-py; run `cifar-lab data download cifar10 --root "
               "../data` again; --root /abs/data and data_root=../data stay")
    said = paths_from_here(message, notebook)
    data = tmp_path / "book" / "data"
    assert f"not found at {data / 'cifar-10-batches-py'};" in said and f"--root {data}`" in said, said
    assert "--root /abs/data and data_root=../data stay" in said, said
