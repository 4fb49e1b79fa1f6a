"""`cifar-lab data imagenet100|synthetic-imagenet`: the ImageNet-100 subset (links into an ImageNet-1k tree)
and generated JPEG trees in the ImageNet layout. Registered under `cifar-lab data` by `cli/data.py`."""
from __future__ import annotations

from ..errors import UsageError


def register(data_sub) -> None:
    sub = data_sub.add_parser(
        "imagenet100", help="build ImageNet-100 (the 100 CMC classes) from ImageNet-1k with links, not copies",
        description="Make DIR/{train,val}/<wnid> for the 100 classes listed in cifar_lab/data/imagenet100_classes.txt, "
                    "linking into IMAGENET1K_DIR/{train,val}/<wnid> (val sorted into class folders). No image is "
                    "copied. Train on it with --set dataset=imagenet100 imagenet_root=DIR.")
    sub.add_argument("--from", dest="source", required=True, metavar="IMAGENET1K_DIR",
                     help="an ImageNet-1k tree with train/<wnid>/ and val/<wnid>/")
    sub.add_argument("--to", dest="out", required=True, metavar="DIR", help="the ImageNet-100 tree to create")
    sub.add_argument("--link", choices=("symlink", "hardlink"), default="symlink",
                     help="symlink: one link per class folder; hardlink: one per file, same file system")
    sub.set_defaults(func=build_imagenet100)

    syn = data_sub.add_parser(
        "synthetic-imagenet", help="write a generated, learnable JPEG tree in the ImageNet folder layout",
        description="Classes are hues and stripe orientations, written as JPEG files under DIR/{train,val}/<wnid>/ "
                    "with wnid-shaped folder names. Optional grayscale, CMYK and corrupt files (added to train/) "
                    "exercise the loader. Train on it with --set dataset=imagenet1k imagenet_root=DIR.")
    syn.add_argument("--to", dest="out", required=True, metavar="DIR", help="the tree to write")
    syn.add_argument("--classes", type=int, default=10, help="number of classes, at least 2")
    syn.add_argument("--train-per-class", type=int, default=16, help="training JPEGs per class")
    syn.add_argument("--val-per-class", type=int, default=4, help="validation JPEGs per class")
    syn.add_argument("--px", type=int, default=80, help="side of the images in pixels, at least 8")
    syn.add_argument("--grayscale", type=int, default=0, help="extra grayscale JPEGs")
    syn.add_argument("--cmyk", type=int, default=0, help="extra CMYK JPEGs")
    syn.add_argument("--corrupt", type=int, default=0, help="extra corrupt .JPEG files")
    syn.add_argument("--seed", type=int, default=0, help="seed of the generator")
    syn.set_defaults(func=write_synthetic_imagenet)


def build_imagenet100(args) -> int:
    from ..data import imagenet

    report = imagenet.build_imagenet100(args.source, args.out, link=args.link)
    if not report["created"]:
        print(f"ImageNet-100 is already at {report['out']}; nothing to do")
    else:
        print(f"ImageNet-100: {report['classes']} classes, {report['files']} files linked ({report['link']}) "
              f"in {report['out']}")
    return 0


def write_synthetic_imagenet(args) -> int:
    from ..data import synthetic_jpeg

    if args.classes < 2 or min(args.train_per_class, args.val_per_class) < 1 or args.px < 8:
        raise UsageError("--classes must be at least 2, --train-per-class/--val-per-class at least 1, --px at least 8")
    if min(args.grayscale, args.cmyk, args.corrupt) < 0:
        raise UsageError("--grayscale, --cmyk and --corrupt must be 0 or more")
    root = synthetic_jpeg.write_tree(args.out, args.classes, args.train_per_class, args.val_per_class, args.px,
                                     args.seed, args.grayscale, args.cmyk, args.corrupt)
    print(f"synthetic-imagenet: {args.classes} classes, {args.classes * args.train_per_class} train + "
          f"{args.classes * args.val_per_class} val JPEGs of {args.px}px (+{args.grayscale} grayscale, "
          f"+{args.cmyk} CMYK, +{args.corrupt} corrupt) in {root}")
    return 0
