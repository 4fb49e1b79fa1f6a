"""The ImageNet folder dataset and both input routes, on generated JPEG trees with odd and corrupt files."""
import pytest
import torch
from PIL import Image

from cifar_lab.config import TrainConfig
from cifar_lab.data import registry
from cifar_lab.data import synthetic_jpeg
from cifar_lab.data.imagenet import class_folders, scan_split
from cifar_lab.data.imagenet_classes import imagenet100_wnids, is_wnid
from cifar_lab.data.jpeg_pipeline import DeviceJpegLoader, SkipLog, decode_rgb, make_loader
from cifar_lab.engine.trainer import resolved_config
from cifar_lab.errors import DataError, UsageError


@pytest.fixture(scope="module")
def odd_tree(tmp_path_factory):
    """4 classes, 3 train + 2 val JPEGs each, plus one grayscale, one CMYK and two corrupt training files."""
    return synthetic_jpeg.write_tree(tmp_path_factory.mktemp("jpeg") / "tree", num_classes=4, train_per_class=3,
                                     val_per_class=2, size=48, grayscale=1, cmyk=1, corrupt=2)


def config_for(root, **extra) -> TrainConfig:
    values = dict(dataset="imagenet1k", imagenet_root=str(root), image_size=32, batch_size=4, eval_batch_size=4,
                  num_workers=0, progress=False, channels_last=False)
    values.update(extra)
    return TrainConfig(**values)


def test_class_list_is_the_100_cmc_wnids():
    wnids = imagenet100_wnids()
    assert len(set(wnids)) == 100 and all(is_wnid(w) for w in wnids)
    assert wnids[0] == "n02869837" and wnids[-1] == "n02090622"


def test_grayscale_and_cmyk_files_decode_to_rgb(odd_tree):
    gray = next((odd_tree / "train").glob("*/*_gray0.JPEG"))
    cmyk = next((odd_tree / "train").glob("*/*_cmyk0.JPEG"))
    assert Image.open(gray).mode == "L" and Image.open(cmyk).mode == "CMYK"
    gray_rgb, cmyk_rgb = decode_rgb(gray.read_bytes()), decode_rgb(cmyk.read_bytes())
    assert gray_rgb.mode == "RGB" and cmyk_rgb.mode == "RGB"
    r, g, b = gray_rgb.split()
    assert r.tobytes() == g.tobytes() == b.tobytes()  # grey stays grey
    for corrupt in (odd_tree / "train").glob("*/*_corrupt*.JPEG"):
        with pytest.raises(Exception):
            decode_rgb(corrupt.read_bytes())


def test_folder_dataset_skips_corrupt_files_and_counts_them(odd_tree):
    data = registry.build(config_for(odd_tree), "cpu")
    assert data.num_classes == 4 and data.class_names == class_folders(odd_tree / "train")
    assert data.info["train_samples"] == 4 * 3 + 4 and data.info["skipped_files"] == 0  # nothing read yet
    seen = 0
    for images, labels in data.train_loader:
        assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
        assert labels.max() < 4
        seen += len(labels)
    assert seen == 4 * 3 + 2  # regular + grayscale + CMYK; the two corrupt files are dropped
    assert data.info["skipped_files"] == 2
    assert all("_corrupt" in p for p in data.info["skipped_paths"])
    for _ in data.train_loader:  # a second epoch meets the same files again: still two
        pass
    assert data.info["skipped_files"] == 2
    val = [labels for _, labels in data.test_loader]
    assert sum(len(v) for v in val) == 8


def test_eval_pipeline_resizes_then_centre_crops(odd_tree):
    config = config_for(odd_tree, image_size=40, eval_resize=0)
    data = registry.build(config, "cpu")
    assert data.eval_resize == round(40 * 256 / 224) and data.resolution == 40  # found, for config.json
    assert config.eval_resize == 0  # the builder reports what it found and leaves the config alone
    images, _ = next(iter(data.test_loader))
    assert images.shape[-2:] == (40, 40)
    # normalised with ImageNet statistics: a mid-grey pixel would be near 0, values span both signs
    assert images.min() < 0 < images.max()


def test_device_route_decodes_batches_and_skips_the_same_files(odd_tree):
    source = scan_split(odd_tree, "train", class_folders(odd_tree / "train"))
    info = {}
    loader = DeviceJpegLoader(source, 5, device="cpu", train=True, size=32, resize=36, skip_log=SkipLog(info),
                              num_workers=0)
    count = 0
    for images, labels in loader:
        assert images.shape[1:] == (3, 32, 32) and torch.isfinite(images).all()
        count += len(labels)
    assert count == 14 and info["skipped_files"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_gpu_route_without_cuda_is_a_clear_error_not_a_fallback(odd_tree):
    source = scan_split(odd_tree, "train", class_folders(odd_tree / "train"))
    with pytest.raises(UsageError, match="CUDA"):
        make_loader("gpu", source, 4, device="cpu", train=True, size=32, resize=36, skip_log=SkipLog({}))
    with pytest.raises(UsageError, match="jpeg_route=cpu"):
        registry.build(config_for(odd_tree, jpeg_route="gpu"), "cpu")


def test_missing_root_and_missing_classes_are_one_line_errors(tmp_path, odd_tree):
    with pytest.raises(DataError, match="imagenet_root"):
        registry.build(config_for("", dataset="imagenet100"), "cpu")
    with pytest.raises(DataError, match="does not exist"):
        registry.build(config_for(tmp_path / "nowhere"), "cpu")
    with pytest.raises(DataError, match="lacks 100 of the 100 ImageNet-100 classes") as err:
        registry.build(config_for(odd_tree, dataset="imagenet100"), "cpu")
    assert "\n" not in str(err.value) and "cifar-lab data imagenet100" in str(err.value)


def test_synthetic_imagenet_is_small_learnable_and_never_pretrained(tmp_path, capsys):
    config = TrainConfig(dataset="synthetic-imagenet", data_root=str(tmp_path), num_classes=3,
                         synthetic_jpeg_train_per_class=2, synthetic_jpeg_val_per_class=1, synthetic_jpeg_px=40,
                         pretrained="v1", num_workers=0)
    data = registry.build(config, "cpu")
    assert not data.pretrained_usable and config.pretrained == "v1"
    resolved = resolved_config(config, data)
    assert resolved.pretrained == "none" and "pretrained=v1 not used" in capsys.readouterr().err
    assert resolved.image_size == 40 and data.num_classes == 3 and data.info["train_samples"] == 6
    assert all(is_wnid(name) for name in data.class_names)
