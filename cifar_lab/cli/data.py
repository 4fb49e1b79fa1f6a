"""`cifar-lab data download|synthetic|...`: fetch the real datasets (Fashion-MNIST, CIFAR-10/100) or write the
generated stand-ins."""
from __future__ import annotations

import sys

from ..errors import UsageError
from . import data_imagenet

# The names `data download` takes; "fashion-mnist" as the dataset is usually written, "fashion_mnist" as the
# config names it.
CIFAR_NAMES = ("cifar10", "cifar100")
FASHION_MNIST_NAMES = ("fashion-mnist", "fashion_mnist")


def register(sub) -> None:
    parser = sub.add_parser("data", help="download Fashion-MNIST or CIFAR-10/100, or write a generated dataset",
                            description="Get datasets onto disk: Fashion-MNIST (the real dataset at CPU scale), "
                                        "CIFAR-10/100, an ImageNet-100 tree, or generated stand-ins in the same "
                                        "layouts. Data already there is never fetched again.")
    data_sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    data_sub.required = True

    dl = data_sub.add_parser(
        "download", help="get Fashion-MNIST, or download, verify (MD5) and extract CIFAR-10 or CIFAR-100",
        description="fashion-mnist: the Debian package's files when they are installed (sudo apt-get install "
                    "dataset-fashion-mnist, under /usr/share/datasets/fashion-mnist), else torchvision's "
                    "FashionMNIST download into ROOT/FashionMNIST/raw. cifar10, cifar100: the official python "
                    "archive, checked against its MD5 and extracted into ROOT. Both splits are read back.")
    dl.add_argument("dataset", metavar="DATASET", help="fashion-mnist, cifar10 or cifar100")
    dl.add_argument("--root", default="data", help="folder for the downloaded files (the data_root of a run)")
    dl.add_argument("--url", help="CIFAR only: a mirror of the official archive (http(s):// or file://) "
                                  "(default: the official address)")
    dl.add_argument("--md5", help="CIFAR only: expected MD5 of the archive at --url (default: the official one)")
    dl.set_defaults(func=download)

    syn = data_sub.add_parser("synthetic", help="write the synthetic dataset in the CIFAR pickle layout",
                              description="A learnable, generated dataset with the files and layout of CIFAR-10 "
                                          "(10 classes) or CIFAR-100 (up to 100 classes, 20 superclasses).")
    syn.add_argument("--root", default="data", help="folder to write it into (the data_root of a run)")
    syn.add_argument("--classes", type=int, default=10, help="number of classes, 2-100")
    syn.add_argument("--train-size", type=int, default=5000, help="training images, at least one per class")
    syn.add_argument("--test-size", type=int, default=1000, help="test images, at least one per class")
    syn.add_argument("--seed", type=int, default=0, help="seed of the generator, 0 or more")
    syn.set_defaults(func=write_synthetic)

    data_imagenet.register(data_sub)


def download(args) -> int:
    if args.dataset in FASHION_MNIST_NAMES:
        return download_fashion_mnist(args)
    if args.dataset not in CIFAR_NAMES:
        raise UsageError(f"unknown dataset '{args.dataset}'; choose one of: fashion-mnist, {', '.join(CIFAR_NAMES)}")
    from ..data import cifar

    spec = cifar.SPECS[args.dataset]
    present = cifar.is_extracted(spec, args.root)
    # The byte counter is for people watching a terminal; in a log or a pipe its carriage-return lines would
    # bury the one line that says what went wrong.
    folder = cifar.download(spec, args.root, url=args.url, md5=args.md5, progress=sys.stderr.isatty())
    # Parsing both splits checks the files' contents, not only their names: a malformed folder is a DataError
    # naming the file and the fix, never reported as present.
    train, test = cifar.load_split(spec, args.root, True), cifar.load_split(spec, args.root, False)
    counts = f"{len(train)} train + {len(test)} test images, {len(train.class_names)} classes"
    if present:
        print(f"{spec.name} is already at {folder} ({counts}, checked); nothing to do")
    else:
        print(f"{spec.name}: {counts} in {folder}")
    return 0


def download_fashion_mnist(args) -> int:
    if args.url or args.md5:
        raise UsageError("--url and --md5 name a CIFAR archive; Fashion-MNIST comes from the Debian package "
                         "dataset-fashion-mnist or from torchvision's own mirrors, with their MD5 checks")
    from ..data import fashion_mnist

    found = fashion_mnist.download(args.root)
    counts = f"{found['train']} train + {found['test']} test images, 10 classes, checked"
    use = "train on it with a fmnist-* preset or --set dataset=fashion_mnist"
    if found["route"] == "debian":
        print(f"Fashion-MNIST is installed by the Debian package {fashion_mnist.APT_PACKAGE} in {found['folder']} "
              f"({counts}); nothing to download; {use}")
    elif found["downloaded"]:
        print(f"Fashion-MNIST: downloaded with torchvision into {found['folder']} ({counts}); {use} "
              f"data_root={args.root}")
    else:
        print(f"Fashion-MNIST is already at {found['folder']} ({counts}); nothing to do; {use} "
              f"data_root={args.root}")
    return 0


def write_synthetic(args) -> int:
    from ..data import synthetic

    synthetic.check_class_count(args.classes, "--classes")
    if args.train_size < args.classes or args.test_size < args.classes:
        raise UsageError("--train-size and --test-size must be at least the number of classes")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    base = synthetic.write(args.root, args.classes, args.train_size, args.test_size, args.seed)
    spec = synthetic.spec_for(args.classes)
    print(f"synthetic: {args.train_size} train + {args.test_size} test images, {args.classes} classes, "
          f"{spec.name} layout in {base / spec.folder}")
    return 0
