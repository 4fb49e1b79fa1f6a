"""The training engine: one loop (`train`), the batch steps, evaluation, checkpoints, optimizers, schedules."""
from .evaluate import evaluate  # noqa: F401
from .trainer import RunResult, train  # noqa: F401
