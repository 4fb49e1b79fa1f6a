"""CIFAR-10, CIFAR-100 and the synthetic stand-in as a `DataBundle`: the splits from disk, normalisation
statistics, and the device-resident loader (or the torchvision reference route with `loader=torchvision`)."""
from __future__ import annotations

from . import cifar, synthetic
from .bundle import DataBundle, channel_stats
from .cifar import CifarSplit
from .loader import DeviceLoader


def load_cifar_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The train and test splits named by `config.dataset`, from disk (downloading real data if allowed)."""
    if config.dataset == "synthetic":
        base = synthetic.write(config.data_root, config.num_classes, config.synthetic_train_size,
                               config.synthetic_test_size, seed=0)
        spec = synthetic.spec_for(config.num_classes)
    else:
        spec, base = cifar.SPECS[config.dataset], config.data_root
        if config.download:
            cifar.download(spec, base, progress=config.progress)
    train = cifar.load_split(spec, base, train=True)
    test = cifar.load_split(spec, base, train=False)
    return train.subset(config.train_subset, seed=config.seed), test.subset(config.test_subset, seed=config.seed)


def cifar_bundle(config, device, generator) -> DataBundle:
    train, test = load_cifar_splits(config)
    if config.normalization == "half":
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    elif config.normalization == "unit":  # pixels scaled to [0, 1], nothing subtracted
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        mean, std = channel_stats(train.images)
    common = dict(device=device, mean=mean, std=std, channels_last=config.channels_last,
                  input_size=config.input_size)
    if config.loader == "torchvision":
        from .reference import make_loader

        train_loader = make_loader(train.images, train.labels, config.batch_size, mean=mean, std=std, train=True,
                                   num_workers=config.num_workers, seed=config.seed, input_size=config.input_size,
                                   augment=config.augment)
        test_loader = make_loader(test.images, test.labels, config.eval_batch_size, mean=mean, std=std,
                                  train=False, num_workers=config.num_workers, input_size=config.input_size)
    else:
        train_loader = DeviceLoader(train.images, train.labels, config.batch_size, train=True,
                                    policy=config.augment, generator=generator, **common)
        test_loader = DeviceLoader(test.images, test.labels, config.eval_batch_size, train=False, **common)
    return DataBundle(
        train_loader=train_loader, test_loader=test_loader, num_classes=len(train.class_names),
        class_names=train.class_names, mean=mean, std=std, resolution=config.input_size,
        source_size=int(train.images.shape[-1]), coarse_of_fine=train.coarse_of_fine,
        coarse_names=train.coarse_names, train_split=train, test_split=test,
        info={"source": train.source, "train_samples": len(train), "test_samples": len(test)},
    )
