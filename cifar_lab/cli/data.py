"""`cifar-lab data download|synthetic`: fetch the real datasets or write the synthetic stand-in."""
from __future__ import annotations

import sys

from ..data import cifar, synthetic
from ..errors import UsageError
from . import data_imagenet


def register(sub) -> None:
    parser = sub.add_parser("data", help="download CIFAR-10/100 or write the synthetic dataset",
                            description="Get datasets onto disk. Data already there is never fetched again.")
    data_sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    data_sub.required = True

    dl = data_sub.add_parser("download", help="download, verify (MD5) and extract CIFAR-10 or CIFAR-100")
    dl.add_argument("dataset", help="cifar10 or cifar100")
    dl.add_argument("--root", default="data", help="folder for the archive and extracted batches (default: data)")
    dl.add_argument("--url", help="a mirror of the official archive (http(s):// or file://)")
    dl.add_argument("--md5", help="expected MD5 of the archive at --url (default: the official one)")
    dl.set_defaults(func=download)

    syn = data_sub.add_parser("synthetic", help="write the synthetic dataset in the CIFAR pickle layout",
                              description="A learnable, generated dataset with the files and layout of CIFAR-10 "
                                          "(10 classes) or CIFAR-100 (up to 100 classes, 20 superclasses).")
    syn.add_argument("--root", default="data")
    syn.add_argument("--classes", type=int, default=10, help="number of classes, 2-100 (default: 10)")
    syn.add_argument("--train-size", type=int, default=5000)
    syn.add_argument("--test-size", type=int, default=1000)
    syn.add_argument("--seed", type=int, default=0, help="seed of the generator, 0 or more (default: 0)")
    syn.set_defaults(func=write_synthetic)

    data_imagenet.register(data_sub)


def download(args) -> int:
    if args.dataset not in cifar.SPECS:
        raise UsageError(f"unknown dataset '{args.dataset}'; choose one of: {', '.join(cifar.SPECS)}")
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


def write_synthetic(args) -> int:
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
