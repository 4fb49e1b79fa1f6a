"""The gate of the AST paper's public repository, offered beside the engine's own (`ast.gate=seed`).

Source: the repository oluwafemidiakhoa/adaptive-sparse-training, file `KAGGLE_VIT_BATCHED_STANDALONE.py` at
commit 3e66290cbf8951eb1fcaefabee9ff6b7a39df75b (its `SundewAlgorithm` and `BatchedAdaptiveSparseTrainer`: the
variant with the significance score the engine uses and the gains Kp 0.0015, Ki 0.00005, the `seed` gain set).
Per scoring batch, with the threshold theta held for the whole batch, that file does:

1. Gate: a sample whose significance s lies above theta passes with probability sigmoid((s - theta) / 0.15); a
   sample at or below theta never passes (so a passing probability is always above one half).
2. Energy budget: the budget starts at 100 and never holds more. A sample that passes the gate is activated
   only while the budget holds more than 10, and each activation spends 10. After every sample, activated or
   not, the budget regains a uniform draw from [1, 3]. Over a long stream this allows at most about 2 / 10 =
   20 % of the samples (plus the 10 activations the full budget starts with), so at a 10 % target it binds
   only in bursts, for example while theta is still too low.
3. Fallback: when nothing is activated, 2 random samples are trained on; they do not count as activations
   for the controller (`controller.CumulativeRateController`, which the same file describes).
4. Training: one optimizer step per scoring batch on its activated samples (unpacked), the gradient norm
   clipped at 1.0.

The file's energy accounting charges 10 per activation and 0.1 per skipped sample, the 100:1 ratio of the
engine's `energy_active` and `energy_skipped`. This module holds steps 1 and 2; the training step
(`engine.sparse_step.SparseStep`) draws the random numbers on the device and spends the budget on the host, as
the budget is sequential by nature: whether a sample may activate depends on every activation before it.
"""
from __future__ import annotations

import torch

TEMPERATURE = 0.15                 # of the sigmoid above theta
ENERGY_MAX = 100.0                 # the budget starts full and never holds more
ENERGY_COST = 10.0                 # spent by one activation
ENERGY_NEEDED = 10.0               # an activation needs strictly more than this in the budget
REGAIN_LOW, REGAIN_HIGH = 1.0, 3.0  # regained after every sample: uniform on [low, high]


def passes(scores: torch.Tensor, theta: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Step 1: which samples pass the stochastic gate, given one uniform draw in [0, 1) per sample."""
    probability = torch.sigmoid((scores.float() - theta) / TEMPERATURE)
    return (scores > theta) & (draws < probability)


def regained(draws: torch.Tensor) -> torch.Tensor:
    """The energy each sample gives back, from one uniform draw in [0, 1) per sample."""
    return REGAIN_LOW + (REGAIN_HIGH - REGAIN_LOW) * draws


class EnergyBudget:
    """Step 2: the budget, spent and regained sample by sample, in order (host floats)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.energy = ENERGY_MAX

    def spend(self, wanted: list[bool], regain: list[float]) -> list[bool]:
        """Which of the samples that passed the gate (`wanted`) are activated; `regain` is each sample's."""
        activated = []
        for want, back in zip(wanted, regain):
            fire = bool(want) and self.energy > ENERGY_NEEDED
            if fire:
                self.energy -= ENERGY_COST
            self.energy = min(ENERGY_MAX, self.energy + back)
            activated.append(fire)
        return activated

    def state_dict(self) -> dict:
        return {"energy": self.energy}

    def load_state_dict(self, state: dict) -> None:
        self.energy = float(state["energy"])
