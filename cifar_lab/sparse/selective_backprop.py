"""Selective Backprop (Jiang et al. 2019, "Accelerating Deep Learning by Focusing on the Biggest Losers"): keep a
sample for the backward pass with probability P = (percentile of its loss among recent losses)^beta
(`ast.selection=selective_backprop`).

As the authors' implementation does it (repository angelajiang/SelectiveBackprop; `lib/SelectiveBackpropper.py`,
`lib/hist.py` and `lib/trainer.py` at commit a8efa57e92b9430d7305b323be784427b1521294, `lib/calculators.py` and
`lib/selectors.py` at commit d29b22219825f5804b4146f1b1f777d14e4f9e69): the history holds the last 1024 losses
(`max_history_len`; here `ast.sb_history`); a batch's losses join the history before their percentiles are
taken; a loss's percentile is the share of the history strictly below it; P = percentile^beta with no floor
(`sampling_min` 0); the kept samples are gathered into backward batches of the full batch size (here
`ast.pack=true`; `ast.pack=false` trains each batch's own). Its first pass over the training set trains on every
sample (`num_images_to_prime`), which here is `ast.dense_epochs=1`.

beta: the authors' `prob_pow`, higher is more selective. With a stationary loss stream a percentile is uniform
on [0, 1), and E[U^beta] = 1 / (beta + 1); so beta = 1 / target - 1 (9 at a 10 % target) keeps the target share
in expectation, which is the default here (`ast.sb_beta` None). The share actually kept drifts from it when the
losses fall over training (the history then holds older, higher losses, and fewer samples are kept); the step
reports the share it kept per epoch (`activation_rate`).

The history lives on the training device as a ring of losses; adding to it and taking percentiles are tensor
ops with no host synchronisation (the fill level is counted on the host from batch sizes).
"""
from __future__ import annotations

import torch


def default_beta(target: float) -> float:
    """The beta whose expected keep share, 1 / (beta + 1) for uniform percentiles, is `target`."""
    return 1.0 / target - 1.0


def resolved_beta(ast_config) -> float:
    return default_beta(ast_config.target) if ast_config.sb_beta is None else float(ast_config.sb_beta)


def keep_probability(percentile: torch.Tensor, beta: float) -> torch.Tensor:
    return percentile.pow(beta)


class LossHistory:
    """The last `length` per-sample losses, a ring buffer on `device`."""

    def __init__(self, length: int, device):
        self.length = int(length)
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self.values = torch.zeros(self.length, dtype=torch.float32, device=self.device)
        self.position = 0   # where the next loss goes
        self.filled = 0     # how many slots hold a loss

    def add(self, losses: torch.Tensor) -> None:
        losses = losses.detach().float().reshape(-1)[-self.length:]  # only the newest can stay in the ring
        slots = (self.position + torch.arange(len(losses), device=self.device)) % self.length
        self.values.index_copy_(0, slots, losses)
        self.position = (self.position + len(losses)) % self.length
        self.filled = min(self.length, self.filled + len(losses))

    def percentile(self, losses: torch.Tensor) -> torch.Tensor:
        """Per loss, the share of the history strictly below it, in [0, 1]."""
        held = self.values[:self.filled]
        return (held.unsqueeze(0) < losses.detach().float().unsqueeze(1)).float().mean(1)

    def state_dict(self) -> dict:
        return {"values": self.values.detach().cpu(), "position": self.position, "filled": self.filled}

    def load_state_dict(self, state: dict) -> None:
        self.values = state["values"].to(self.device, torch.float32)
        self.length = len(self.values)
        self.position, self.filled = int(state["position"]), int(state["filled"])


def select(losses: torch.Tensor, history: LossHistory, beta: float, draws: torch.Tensor) -> torch.Tensor:
    """Add a batch's losses to `history`, then keep each sample with probability percentile^beta, given one
    uniform draw in [0, 1) per sample; a boolean mask."""
    history.add(losses)
    return draws < keep_probability(history.percentile(losses), beta)
