"""Fine-tuning's two settings: `classes` (a subset of Fashion-MNIST's classes, relabelled) and `init_from` (a
checkpoint's weights start the model, all but its classifier layer), with the one-line errors for bad values,
and the two-stage plan the chapter trains."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar_lab import models
from cifar_lab.book import finetune
from cifar_lab.cli import main
from cifar_lab.config import TrainConfig, validate
from cifar_lab.data import fashion_mnist
from cifar_lab.data.class_subset import class_ids
from cifar_lab.engine import checkpoint, train
from cifar_lab.engine.trainer import setup
from cifar_lab.errors import UsageError

N_TRAIN, N_TEST = 200, 60


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path, monkeypatch) -> dict:
    """Four IDX files in the official layout (random images, labels in a shuffled order), served as the Debian
    package's folder; returns the raw arrays per split."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    raw = {}
    for train_split, n, seed in ((True, N_TRAIN, 0), (False, N_TEST, 1)):
        rng = np.random.default_rng(seed)
        images = rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        image_file, label_file = fashion_mnist.FILES[train_split]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, labels)
        raw[train_split] = (images, labels)
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
    return raw


def config_for(tmp_path, **changes) -> TrainConfig:
    config = TrainConfig(dataset="fashion_mnist", data_root=str(tmp_path / "empty"), download=False,
                         model="simple_cnn", batch_size=32, eval_batch_size=64, progress=False, epochs=1,
                         device="cpu", precision="fp32", channels_last=False, optimizer="adamw", lr=2e-3)
    for key, value in changes.items():
        setattr(config, key, value)
    return validate(config)


# --- classes ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, ids", [("5-9", [5, 6, 7, 8, 9]), ("5,6,7,8,9", [5, 6, 7, 8, 9]),
                                       ("9,0-2", [0, 1, 2, 9]), (" 3 , 7 ", [3, 7])])
def test_class_lists_and_ranges_are_read_in_ascending_order(text, ids):
    assert class_ids("fashion_mnist", text) == ids


@pytest.mark.parametrize("text", ["5-9", "0,2,9"])
def test_classes_keep_only_those_images_relabelled_in_order(tmp_path, idx_folder, text):
    kept = class_ids("fashion_mnist", text)
    train_split, test_split = fashion_mnist.load_splits(config_for(tmp_path, classes=text))
    for split, (images, labels) in ((train_split, idx_folder[True]), (test_split, idx_folder[False])):
        mask = np.isin(labels, kept)
        expected_labels = np.searchsorted(kept, labels[mask])
        assert split.labels.tolist() == expected_labels.tolist()
        # the same images, in the file's order, padded by 2 to 32x32
        assert torch.equal(split.images[:, 0, 2:30, 2:30], torch.from_numpy(images[mask]))
        assert split.class_names == [fashion_mnist.CLASS_NAMES[i] for i in kept]
        # each kept class keeps its superclass, under the renumbered superclass names
        coarse = split.coarse_of_fine
        assert [split.coarse_names[c] for c in coarse.tolist()] == \
            [fashion_mnist.COARSE_NAMES[fashion_mnist.COARSE_OF_FINE[i]] for i in kept]
        assert sorted(set(coarse.tolist())) == list(range(len(split.coarse_names)))
        assert torch.equal(split.coarse_labels, coarse[split.labels])


def test_subsets_are_cut_from_the_kept_classes_and_the_bundle_reports_them(tmp_path, idx_folder):
    from cifar_lab.data import registry

    config = config_for(tmp_path, classes="5-9", train_subset=30, test_subset=10)
    data = registry.build(config, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert len(data.train_split) == 30 and len(data.test_split) == 10
    assert data.num_classes == 5 and data.class_names == fashion_mnist.CLASS_NAMES[5:]
    assert int(data.train_split.labels.max()) <= 4 and data.info["kept_classes"] == [5, 6, 7, 8, 9]
    assert data.coarse_names == ["tops", "footwear", "bags"]   # shirt; sandal, sneaker, ankle boot; bag


@pytest.mark.parametrize("config, says", [
    (dict(dataset="cifar10", classes="0-4"), "supported for dataset fashion_mnist only, not cifar10"),
    (dict(classes="9-5"), "runs backwards; write it as 5-9"),
    (dict(classes="shirts"), "is not a list of class ids"),
    (dict(classes="5,5,6"), "names a class twice"),
    (dict(classes="3-12"), "fashion_mnist has classes 0-9, not 12"),
    (dict(classes="4"), "keeps one class"),
    (dict(classes="1-"), "is not a list of class ids"),
])
def test_bad_classes_are_one_line_usage_errors(config, says):
    settings = {"dataset": "fashion_mnist", "model": "simple_cnn", **config}
    with pytest.raises(UsageError) as caught:
        validate(TrainConfig(**settings))
    assert says in str(caught.value) and "\n" not in str(caught.value)


# --- init_from -------------------------------------------------------------------------------------------------

@pytest.fixture
def pretrained(tmp_path, idx_folder) -> Path:
    """A one-epoch run on classes 0-4; its last.pt."""
    train(config_for(tmp_path, classes="0-4", seed=3), tmp_path / "pretrain")
    return tmp_path / "pretrain" / "last.pt"


def head_keys(model) -> set[str]:
    head = checkpoint.classifier_layer(model)
    return {key for key in model.state_dict() if key.startswith(head + ".")}


def test_init_from_copies_the_backbone_bit_equal_and_leaves_the_head_fresh(tmp_path, pretrained):
    saved = checkpoint.load(pretrained)["model"]
    tuned = setup(config_for(tmp_path, classes="5-9", init_from=str(pretrained), seed=7), None, False)
    scratch = setup(config_for(tmp_path, classes="5-9", seed=7), None, False)
    heads = head_keys(tuned.model)
    assert heads == {"classifier.4.weight", "classifier.4.bias"}   # SimpleCNN's last Linear
    for key, value in tuned.model.state_dict().items():
        if key in heads:   # the new task's head: the fresh initialisation of the same seed, not the checkpoint's
            assert torch.equal(value, scratch.model.state_dict()[key]) and not torch.equal(value, saved[key])
        else:
            assert torch.equal(value, saved[key]), key
            assert not torch.equal(value, scratch.model.state_dict()[key]), key
    assert sorted(tuned.data.info["initialised_from"]["fresh"]) == sorted(heads)


def test_init_from_keeps_the_head_of_a_checkpoint_of_the_same_classes(tmp_path, pretrained):
    saved = checkpoint.load(pretrained)["model"]
    same = setup(config_for(tmp_path, classes="0-4", init_from=str(pretrained), seed=7), None, False)
    assert all(torch.equal(value, saved[key]) for key, value in same.model.state_dict().items())


def test_init_from_fills_in_the_seed_of_each_run(tmp_path, idx_folder):
    plan = finetune.two_stage_plan(tmp_path / "runs", [0, 1], {"classes": "0-4"}, {"classes": "5-9"})
    assert list(plan) == [finetune.PRETRAINING, finetune.FINE_TUNED, finetune.SCRATCH]
    template = plan[finetune.FINE_TUNED]["overrides"]["init_from"]
    assert "init_from" not in plan[finetune.SCRATCH]["overrides"]
    # one input scaling for every stage: the copied layers see inputs scaled as in pretraining
    assert {step["overrides"]["normalization"] for step in plan.values()} == {"half"}
    for seed in (0, 1):
        train(config_for(tmp_path, classes="0-4", seed=seed, save_checkpoints=True),
              tmp_path / "runs" / finetune.PRETRAINING / f"seed{seed}")
    for seed in (0, 1):
        run = setup(config_for(tmp_path, classes="5-9", seed=seed, init_from=template), None, False)
        wanted = checkpoint.load(tmp_path / "runs" / finetune.PRETRAINING / f"seed{seed}" / "last.pt")["model"]
        assert torch.equal(run.model.state_dict()["features.0.weight"], wanted["features.0.weight"])


def test_a_missing_file_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--preset", "fmnist-simplecnn", "--set", f"init_from={tmp_path / 'none.pt'}",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "none.pt: no such file" in err, err
    assert not out.exists()


@pytest.mark.parametrize("setting, says", [
    ("init_from=RUN/seed{epoch}/last.pt", "the only placeholder it may hold is {seed}"),
    ("pretrained=v1", "both set the starting weights"),
])
def test_bad_init_from_settings_are_one_line(tmp_path, setting, says):
    path = tmp_path / "last.pt"
    path.write_bytes(b"")
    config = TrainConfig(dataset="fashion_mnist", model="resnet18", init_from=str(path))
    key, value = setting.split("=", 1)
    setattr(config, key, value)
    with pytest.raises(UsageError) as caught:
        validate(config)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_corrupt_file_is_one_line(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UsageError) as caught:
        checkpoint.initialise_from(models.build("simple_cnn", 5), path, "simple_cnn", ["a"] * 5)
    assert "cannot be read" in str(caught.value) and "\n" not in str(caught.value)


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    checkpoint.save(path, {"model": models.build("mlp_256_128_100", 5).state_dict(),
                           "config": {"model": "mlp_256_128_100"}})
    model = models.build("simple_cnn", 5)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(UsageError, match="holds a mlp_256_128_100 model, not simple_cnn"):
        checkpoint.initialise_from(model, path, "simple_cnn", ["a"] * 5)
    # the same name with other shapes (a layer resized by hand) is refused too, and nothing is copied
    weights = models.build("simple_cnn", 5).state_dict()
    weights["features.0.weight"] = torch.zeros(16, 3, 3, 3)
    checkpoint.save(path, {"model": weights, "config": {"model": "simple_cnn"}})
    with pytest.raises(UsageError, match="features.0.weight has another shape"):
        checkpoint.initialise_from(model, path, "simple_cnn", ["a"] * 5)
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18_cifar", "mobilenetv3_small_cifar", "tf_convnet",
                                  "mlp_256_128_100", "naivenet", "efficientnet_b0", "mobilenet_v2"])
def test_the_classifier_layer_is_the_one_that_scores_the_classes(name):
    model = models.build(name, num_classes=7)
    weight = model.state_dict()[checkpoint.classifier_layer(model) + ".weight"]
    assert weight.shape[0] == 7
