"""The ImageNet-100 class list (the 100-synset subset first used by CMC) and checks on WordNet ids.

The list ships as `imagenet100_classes.txt` beside this module, one wnid a line, in the CMC order; a class's
index in ImageNet-100 is its position in the sorted list (as torchvision's ImageFolder would number it).
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

WNID = re.compile(r"^n\d{8}$")


@lru_cache(maxsize=1)
def imagenet100_wnids() -> tuple[str, ...]:
    """The 100 wnids of ImageNet-100, in the order of the published list."""
    text = resources.files(__package__).joinpath("imagenet100_classes.txt").read_text()
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip())
    assert len(wnids) == 100 and len(set(wnids)) == 100, "imagenet100_classes.txt must hold 100 distinct wnids"
    return wnids


def is_wnid(name: str) -> bool:
    return bool(WNID.match(name))
