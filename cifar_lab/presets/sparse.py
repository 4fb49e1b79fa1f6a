"""Adaptive Sparse Training recipes: the dense CIFAR-10 recipes with AST at a 10 % target.

Baselines with the same CLI: dense = the preset without `-ast` (or `presets.resolve(name, ast=False)`); a
random subset at the same rate = `--set ast.selection=random`; dense training with the AST run's wall-clock =
the dense preset with `--set time_budget_s=SECONDS`.
"""
from .cifar10 import PRESETS as CIFAR10

PRESETS = {
    "cifar10-simplecnn-ast": dict(CIFAR10["cifar10-simplecnn"], ast={"enabled": True, "target": 0.10}),
    "cifar10-resnet18-ast": dict(CIFAR10["cifar10-resnet18"], ast={"enabled": True, "target": 0.10}),
}
