"""The gate and its controller on a synthetic score stream: how the book chooses and compares gains.

Training a network to watch a controller is slow; the controller only ever sees the batch's scores, so a
stream of batches whose losses and intensities are spread like a real training batch's is enough to
see whether a gain set settles, how fast, and whether it oscillates. The scores go through the same
`score.significance` and the same `PIController` as training does.

Losses: Gamma-distributed (many nearly learned samples, a long tail of hard ones; `loss_shape` < 1 is the
spread late in training, > 1 early on). Intensities: log-normal around 1 (per-image standard deviation of
normalised images).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .controller import PIController
from .score import significance


@dataclass
class SimTrace:
    theta: torch.Tensor      # threshold each batch was gated with
    rate: torch.Tensor       # that batch's activation rate
    ema: torch.Tensor        # controller's EMA after the batch
    integral: torch.Tensor   # integral term after the batch

    def epoch_rates(self, batches_per_epoch: int) -> torch.Tensor:
        usable = (len(self.rate) // batches_per_epoch) * batches_per_epoch
        return self.rate[:usable].reshape(-1, batches_per_epoch).mean(1)

    def settle_batch(self, target: float, tolerance: float = 0.02, window: int = 20) -> int:
        """First batch from which the rolling `window`-batch mean rate stays within `tolerance` of the
        target for the rest of the stream; -1 if it never does."""
        if len(self.rate) < window:
            return -1
        rolling = self.rate.unfold(0, window, 1).mean(1)
        outside = ((rolling - target).abs() > tolerance).nonzero()
        if len(outside) == 0:
            return 0
        first = int(outside[-1]) + 1
        return first + window - 1 if first < len(rolling) else -1


def score_stream(batches: int, batch_size: int = 128, loss_shape: float = 0.8, intensity_sigma: float = 0.25,
                 seed: int = 0, loss_weight: float = 0.7, intensity_weight: float = 0.3) -> torch.Tensor:
    """[batches, batch_size] significance scores of a stationary synthetic stream."""
    gen = torch.Generator().manual_seed(seed)
    gamma = torch.distributions.Gamma(torch.tensor(loss_shape), torch.tensor(1.0))
    # torch.distributions has no generator argument: draw the Gamma samples under a fork of the RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        losses = gamma.sample((batches, batch_size))
    intensity = torch.exp(intensity_sigma * torch.randn(batches, batch_size, generator=gen))
    rows = [significance(losses[b], intensity[b], loss_weight, intensity_weight) for b in range(batches)]
    return torch.stack(rows)


def simulate(scores: torch.Tensor, target: float = 0.10, kp: float = 0.15, ki: float = 0.0, theta0: float = 0.5,
             ema_alpha: float = 0.3, integral_limit: float = 50.0, fallback_samples: int = 2) -> SimTrace:
    """Gate each batch of `scores` with the hard threshold, with the fallback, and run the controller."""
    controller = PIController(target, kp, ki, theta0, ema_alpha, integral_limit)
    thetas, rates, emas, integrals = [], [], [], []
    batch_size = scores.shape[1]
    for batch in scores:
        thetas.append(controller.theta.clone())
        active = int((batch > controller.theta).sum())
        rate = (active if active else min(fallback_samples, batch_size)) / batch_size
        controller.update(rate)
        rates.append(rate)
        emas.append(controller.ema.clone())
        integrals.append(controller.integral.clone())
    return SimTrace(torch.stack(thetas), torch.tensor(rates), torch.stack(emas), torch.stack(integrals))


def sweep(kps, kis, targets=(0.10,), batches: int = 1200, batch_size: int = 128, batches_per_epoch: int = 40,
          seed: int = 0, scores: torch.Tensor | None = None) -> list[dict]:
    """Every (target, kp, ki) on the same score stream: settling batch, epoch-rate error, oscillation.
    `scores` ([batches, batch size]) replays a stream recorded from training (`ast.record_scores`) instead
    of the stationary synthetic one."""
    if scores is None:
        scores = score_stream(batches, batch_size, seed=seed)
    scores = scores.float()
    rows = []
    for target in targets:
        for kp in kps:
            for ki in kis:
                trace = simulate(scores, target, kp, ki)
                epochs = trace.epoch_rates(batches_per_epoch)
                later = epochs[1:]
                rows.append({
                    "target": target, "kp": kp, "ki": ki,
                    "settle_batch": trace.settle_batch(target),
                    "max_epoch_error_after_1st": float((later - target).abs().max()) if len(later) else float("nan"),
                    "epoch_rate_min": float(epochs.min()), "epoch_rate_max": float(epochs.max()),
                    "theta_std_after_1st": float(trace.theta[batches_per_epoch:].std()),
                    "max_abs_integral": float(trace.integral.abs().max()),
                })
    return rows


def compare_gain_sets(scores: torch.Tensor, gain_sets: dict, target: float = 0.10,
                      batches_per_epoch: int = 40) -> tuple[dict, dict]:
    """Run every gain set (name -> {"kp", "ki"}) on the same stream; return a row of figures per set (settle
    batch, the lowest and highest epoch rate after the first epoch, the last epoch's rate) and its trace."""
    rows, traces = {}, {}
    for name, gains in gain_sets.items():
        trace = simulate(scores, target=target, kp=gains["kp"], ki=gains["ki"])
        rates = trace.epoch_rates(batches_per_epoch)
        rows[name] = {"kp": gains["kp"], "ki": gains["ki"], "settle_batch": trace.settle_batch(target),
                      "epoch_rate_min": float(rates[1:].min()), "epoch_rate_max": float(rates[1:].max()),
                      "last_epoch_rate": float(rates[-1])}
        traces[name] = trace
    return rows, traces
