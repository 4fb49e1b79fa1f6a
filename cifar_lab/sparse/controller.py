"""The PI controller that holds the share of active samples at the target (step 4 of the gate).

Once per batch, on that batch's activation rate r:
    ema <- alpha * r + (1 - alpha) * ema          (starts at the target)
    e   <- ema - target                          (too many active -> e > 0 -> raise the threshold)
    I   <- clamp(I + e, ±limit)  while 0.01 < theta < 0.99,  else  I <- 0.9 * I   (anti-windup)
    theta <- clamp(theta + kp * e + ki * I, 0, 1)
The anti-windup test uses the threshold the batch was gated with (before this update).

Note that `theta + kp * e` already integrates the error: in this incremental form kp acts as an integral gain
and ki as a second, slower integrator; that is why the AST paper's large ki / tiny kp oscillates (see `sim`).

All state lives in tensors on the training device and `update` only queues tensor ops, so gating and control
never wait for the device (no `.item()` per batch).

`CumulativeRateController` is the AST paper's repository's variant, which the seed gate (`seed_gate`) uses: fed
the activation rate since it started rather than the batch's, with its own order of the update.
"""
from __future__ import annotations

import torch

WINDUP_LOW, WINDUP_HIGH, WINDUP_DECAY = 0.01, 0.99, 0.9


class PIController:
    def __init__(self, target: float, kp: float, ki: float, theta0: float = 0.5, ema_alpha: float = 0.3,
                 integral_limit: float = 50.0, device="cpu"):
        self.target, self.kp, self.ki = float(target), float(kp), float(ki)
        self.theta0, self.ema_alpha, self.integral_limit = float(theta0), float(ema_alpha), float(integral_limit)
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Back to the initial state: theta0, EMA at the target, empty integral (also when AST starts after
        dense warm-up epochs)."""
        def scalar(value):
            return torch.tensor(float(value), dtype=torch.float32, device=self.device)

        self.theta = scalar(self.theta0)
        self.ema = scalar(self.target)
        self.integral = scalar(0.0)
        self.updates = torch.zeros((), dtype=torch.long, device=self.device)

    def update(self, rate: torch.Tensor, weight=1.0) -> None:
        """Feed one batch's activation rate (a 0-dim device tensor, or a float). `weight` is the batch's size
        relative to a full batch: a short last batch of an epoch moves the EMA only that much. It may be a
        device tensor (a size all-reduced over ranks), which then stays on the device: no host sync."""
        rate = torch.as_tensor(rate, dtype=torch.float32, device=self.device)
        if isinstance(weight, torch.Tensor):
            alpha = self.ema_alpha * weight.to(torch.float32).clamp(max=1.0)
        else:
            alpha = self.ema_alpha * min(1.0, weight)
        self.ema = alpha * rate + (1.0 - alpha) * self.ema
        error = self.ema - self.target
        inside = (self.theta > WINDUP_LOW) & (self.theta < WINDUP_HIGH)
        accumulated = torch.clamp(self.integral + error, -self.integral_limit, self.integral_limit)
        self.integral = torch.where(inside, accumulated, WINDUP_DECAY * self.integral)
        self.theta = torch.clamp(self.theta + self.kp * error + self.ki * self.integral, 0.0, 1.0)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"theta": self.theta.detach().cpu(), "ema": self.ema.detach().cpu(),
                "integral": self.integral.detach().cpu(), "updates": self.updates.detach().cpu(),
                "target": self.target, "kp": self.kp, "ki": self.ki}

    def load_state_dict(self, state: dict) -> None:
        self.theta = state["theta"].to(self.device, torch.float32)
        self.ema = state["ema"].to(self.device, torch.float32)
        self.integral = state["integral"].to(self.device, torch.float32)
        self.updates = state["updates"].to(self.device, torch.long)

    @classmethod
    def from_config(cls, ast_config, device) -> "PIController":
        from .config import resolved_gains

        kp, ki = resolved_gains(ast_config)
        return cls(ast_config.target, kp, ki, ast_config.theta0, ast_config.ema_alpha, ast_config.integral_limit,
                   device)


class CumulativeRateController(PIController):
    """The controller of the AST paper's repository (`ast.gate=seed`; the source is named in `seed_gate`).

    It is fed the activation rate over every sample since it started (activations / samples processed, the
    gate's activations only: fallback samples do not count), not the batch's rate, and orders its update
    differently:
        ema      <- alpha * cumulative rate + (1 - alpha) * ema        (starts at the target; not weighted by size)
        e        <- ema - target
        proposed <- theta + kp * e + ki * I                            (I of the batches before)
        I        <- clamp(I + e, ±limit)  while 0.01 < proposed < 0.99,  else  I <- 0.9 * I
        theta    <- clamp(proposed, 0, 1)
    A cumulative rate moves less with every batch, so late in a run the controller reacts to a change of the
    batches' rate ever more slowly.
    """

    def reset(self) -> None:
        super().reset()
        self.activated = torch.zeros((), dtype=torch.long, device=self.device)
        self.processed = torch.zeros((), dtype=torch.long, device=self.device)

    def update(self, activated, processed) -> None:  # type: ignore[override]
        """Count one batch's activations among its `processed` samples (ints or 0-dim device tensors)."""
        self.activated = self.activated + torch.as_tensor(activated, device=self.device).long()
        self.processed = self.processed + torch.as_tensor(processed, device=self.device).long()
        rate = self.activated.float() / self.processed.clamp_min(1).float()
        self.ema = self.ema_alpha * rate + (1.0 - self.ema_alpha) * self.ema
        error = self.ema - self.target
        proposed = self.theta + self.kp * error + self.ki * self.integral
        inside = (proposed > WINDUP_LOW) & (proposed < WINDUP_HIGH)
        accumulated = torch.clamp(self.integral + error, -self.integral_limit, self.integral_limit)
        self.integral = torch.where(inside, accumulated, WINDUP_DECAY * self.integral)
        self.theta = torch.clamp(proposed, 0.0, 1.0)
        self.updates += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "activated": self.activated.detach().cpu(),
                "processed": self.processed.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.activated = state["activated"].to(self.device, torch.long)
        self.processed = state["processed"].to(self.device, torch.long)
