"""CIFAR-10, CIFAR-100 and the synthetic stand-in as a `DataBundle`: the splits read from disk (the synthetic
ones written first, real ones downloaded where allowed), handed to the in-memory builder (`in_memory.bundle`),
which selects the samples, measures the statistics and builds the loaders."""
from __future__ import annotations

from . import cifar, in_memory, synthetic
from .bundle import DataBundle
from .cifar import CifarSplit


def read_cifar_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The full train and test splits named by `config.dataset`, from disk (downloading real data if allowed)."""
    if config.dataset == "synthetic":
        base = synthetic.write(config.data_root, config.num_classes, config.synthetic_train_size,
                               config.synthetic_test_size, seed=0)
        spec = synthetic.spec_for(config.num_classes)
    else:
        spec, base = cifar.SPECS[config.dataset], config.data_root
        if config.download:
            cifar.download(spec, base, progress=config.progress)
    return cifar.load_split(spec, base, train=True), cifar.load_split(spec, base, train=False)


def load_cifar_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The splits a run on `config` uses: `train_subset` and `test_subset` applied."""
    return in_memory.select(config, *read_cifar_splits(config))


def cifar_bundle(config, device, generator) -> DataBundle:
    return in_memory.bundle(config, device, generator, *read_cifar_splits(config))
