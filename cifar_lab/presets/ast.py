"""Adaptive Sparse Training recipes (DESIGN.md §5, notebook 03).

Baselines with the same CLI: dense = the preset without `-ast`; a random subset at the same rate =
`--set ast.selection=random`; dense training with the AST run's wall-clock = the dense preset with
`--set time_budget_s=SECONDS` (checked at epoch ends).
"""
from . import overrides, register

register(
    "cifar10-simplecnn-ast",
    "the AST seed's CIFAR-10 setup: SimpleCNN, AdamW 1e-3, wd 1e-4, 40 epochs, batch 128, AST at a 10% target",
    **overrides("cifar10-simplecnn"), ast={"enabled": True, "target": 0.10},
)

register(
    "cifar10-resnet18-ast",
    "ResNet-18 (CIFAR stem) on CIFAR-10 with AST at a 10% target: SGD 0.1, momentum 0.9, wd 5e-4, cosine, 200 epochs",
    **overrides("cifar10-resnet18"), ast={"enabled": True, "target": 0.10},
)
