"""`cifar-lab data imagenet100`: the 100 CMC classes of an ImageNet-1k tree, linked, never copied."""
import os

import pytest

from cifar_lab.cli import main
from cifar_lab.data import synthetic_jpeg
from cifar_lab.data.imagenet import build_imagenet100
from cifar_lab.data.imagenet_classes import imagenet100_wnids
from cifar_lab.errors import DataError

EXTRA = ["n01440764", "n01443537"]  # two ImageNet-1k classes that are not in ImageNet-100


@pytest.fixture(scope="module")
def imagenet1k_tree(tmp_path_factory):
    wnids = list(imagenet100_wnids()) + EXTRA
    return synthetic_jpeg.write_tree(tmp_path_factory.mktemp("in1k") / "imagenet", num_classes=len(wnids),
                                     train_per_class=1, val_per_class=1, size=16, wnids=wnids)


def test_symlinked_subset_holds_exactly_the_100_classes(imagenet1k_tree, tmp_path, capsys):
    out = tmp_path / "imagenet100"
    assert main(["data", "imagenet100", "--from", str(imagenet1k_tree), "--to", str(out)]) == 0
    assert "100 classes, 200 files linked (symlink)" in capsys.readouterr().out
    for split in ("train", "val"):
        names = sorted(os.listdir(out / split))
        assert names == sorted(imagenet100_wnids())
        link = out / split / names[0]
        assert link.is_symlink() and link.resolve() == (imagenet1k_tree / split / names[0]).resolve()
    assert main(["data", "imagenet100", "--from", str(imagenet1k_tree), "--to", str(out)]) == 0
    assert "already" in capsys.readouterr().out


def test_hardlinked_subset_shares_the_files(imagenet1k_tree, tmp_path):
    out = tmp_path / "imagenet100"
    report = build_imagenet100(imagenet1k_tree, out, link="hardlink")
    assert report["files"] == 200
    wnid = imagenet100_wnids()[0]
    original = next((imagenet1k_tree / "train" / wnid).iterdir())
    linked = out / "train" / wnid / original.name
    assert not linked.is_symlink() and os.stat(linked).st_ino == os.stat(original).st_ino


def test_a_source_without_the_classes_is_refused_and_nothing_is_written(tmp_path, capsys):
    partial = synthetic_jpeg.write_tree(tmp_path / "partial", num_classes=3, train_per_class=1, val_per_class=1,
                                        size=16, wnids=list(imagenet100_wnids()[:3]))
    with pytest.raises(DataError, match="lacks 97 of the 100"):
        build_imagenet100(partial, tmp_path / "out")
    assert main(["data", "imagenet100", "--from", str(partial), "--to", str(tmp_path / "out")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
