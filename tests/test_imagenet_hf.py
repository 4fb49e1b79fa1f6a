"""The Hugging Face route (`imagenet1k-hf`) on small local datasets with ILSVRC/imagenet-1k's schema
(an `image` feature and a `label` ClassLabel; splits train and validation) - never the hub."""
import io

import pytest
import torch

datasets = pytest.importorskip("datasets")

from PIL import Image  # noqa: E402

from cifar_lab.config import TrainConfig  # noqa: E402
from cifar_lab.data import registry  # noqa: E402
from cifar_lab.data.synthetic_jpeg import generate_image  # noqa: E402
from cifar_lab.errors import DataError  # noqa: E402

NAMES = ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark"]


def jpeg(label: int, rng, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(generate_image(label, len(NAMES), 40, rng)).convert(mode).save(buffer, format="JPEG")
    return buffer.getvalue()


def split(n_per_class: int, rng, corrupt: int = 0):
    rows = [{"bytes": jpeg(k, rng, "L" if i == 1 else "RGB"), "path": None} for k in range(len(NAMES))
            for i in range(n_per_class)]
    labels = [k for k in range(len(NAMES)) for _ in range(n_per_class)]
    rows += [{"bytes": b"\xff\xd8\xff\xe0 not a jpeg", "path": None}] * corrupt
    labels += [0] * corrupt
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES)})
    return datasets.Dataset.from_dict({"image": rows, "label": labels}, features=features)


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory):
    import numpy as np

    rng = np.random.default_rng(0)
    dataset = datasets.DatasetDict({"train": split(4, rng, corrupt=1), "validation": split(2, rng)})
    path = tmp_path_factory.mktemp("hf") / "imagenet-1k-local"
    dataset.save_to_disk(str(path))
    return path, dataset


def config_for(hf_dataset, **extra):
    values = dict(dataset="imagenet1k-hf", hf_dataset=str(hf_dataset), image_size=32, batch_size=4,
                  eval_batch_size=8, num_workers=0, progress=False, channels_last=False)
    values.update(extra)
    return TrainConfig(**values)


def test_save_to_disk_copy_loads_with_class_names_and_skips_the_corrupt_image(local_dataset):
    path, _ = local_dataset
    data = registry.build(config_for(path), "cpu")
    assert data.class_names == NAMES and data.num_classes == 3
    assert data.info["source"] == f"huggingface:{path}"
    seen = sum(len(labels) for _, labels in data.train_loader)
    assert seen == 12 and data.info["skipped_files"] == 1
    assert data.info["skipped_paths"] == [f"{path}[train][12]"]
    images, labels = next(iter(data.test_loader))
    assert images.shape == (6, 3, 32, 32) and sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_parquet_files_in_the_hub_layout_load_the_same_way(local_dataset, tmp_path):
    _, dataset = local_dataset
    (tmp_path / "data").mkdir()
    dataset["train"].to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    dataset["validation"].to_parquet(str(tmp_path / "data" / "validation-00000-of-00001.parquet"))
    data = registry.build(config_for(tmp_path), "cpu")
    assert data.info["train_samples"] == 13 and data.info["test_samples"] == 6
    labels = torch.cat([y for _, y in data.test_loader])
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_hub_dataset_without_access_is_one_clear_line(monkeypatch, tmp_path):
    import huggingface_hub.constants

    # the libraries read these at import time, so set the module constants too: no network is tried
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache", raising=False)
    with pytest.raises(DataError) as err:
        registry.build(config_for("ILSVRC/imagenet-1k"), "cpu")
    message = str(err.value)
    assert "\n" not in message and "ILSVRC/imagenet-1k" in message and "hf_dataset=" in message
