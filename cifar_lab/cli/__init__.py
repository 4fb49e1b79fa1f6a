"""The command-line layer: `cifar-lab` (also `python -m cifar_lab`). It parses arguments, calls the library
and prints; the library and the notebooks never import it (tests/test_layers.py checks)."""
from .main import build_parser, main  # noqa: F401
