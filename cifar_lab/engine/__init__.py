"""The training engine: one loop (`train`), evaluation, checkpoints, optimizers and schedules."""
from .evaluate import evaluate  # noqa: F401
from .trainer import RunResult, train  # noqa: F401
