"""Gain sets and validation of the `ast.*` config fields."""
from __future__ import annotations

from ..errors import UsageError

# The gains of the AST paper's repository ("seed", Kp 0.0015, Ki 0.00005), kept to show how they behave: the
# integral term winds up and the activation rate oscillates. The project's defaults ("tuned") come from the
# sweeps of the AST chapter (notebook 03), on a stationary score stream and on one recorded from training:
# Kp 0.5 settles within the first epoch on both, and a second integrator (Ki > 0) helps on neither.
GAIN_SETS = {
    "seed": {"kp": 0.0015, "ki": 0.00005},
    "tuned": {"kp": 0.5, "ki": 0.0},
}


def resolved_gains(ast_config) -> tuple[float, float]:
    base = GAIN_SETS[ast_config.gains]
    kp = base["kp"] if ast_config.kp is None else ast_config.kp
    ki = base["ki"] if ast_config.ki is None else ast_config.ki
    return kp, ki


def validate_ast(config) -> None:
    ast = config.ast
    if not 0.0 < ast.target <= 1.0:
        raise UsageError(f"ast.target must be in (0, 1] (a fraction of the batch), got {ast.target}")
    kp, ki = resolved_gains(ast)
    if kp < 0 or ki < 0:
        raise UsageError(f"controller gains must be 0 or more, got ast.kp={kp}, ast.ki={ki}")
    if not 0.0 <= ast.theta0 <= 1.0:
        raise UsageError(f"ast.theta0 must be in [0, 1], got {ast.theta0}")
    if not 0.0 < ast.ema_alpha <= 1.0:
        raise UsageError(f"ast.ema_alpha must be in (0, 1], got {ast.ema_alpha}")
    if ast.loss_weight < 0 or ast.intensity_weight < 0 or abs(ast.loss_weight + ast.intensity_weight - 1.0) > 1e-6:
        raise UsageError(
            f"ast.loss_weight + ast.intensity_weight must be 1 (both 0 or more), got "
            f"{ast.loss_weight} + {ast.intensity_weight}"
        )
    if ast.integral_limit < 0:
        raise UsageError(f"ast.integral_limit must be 0 or more, got {ast.integral_limit}")
    if ast.fallback_samples < 1:
        raise UsageError(f"ast.fallback_samples must be at least 1, got {ast.fallback_samples}")
    if ast.temperature <= 0:
        raise UsageError(f"ast.temperature must be positive, got {ast.temperature}")
    if ast.record_scores < 0:
        raise UsageError(f"ast.record_scores must be 0 or more, got {ast.record_scores}")
    if ast.dense_epochs < 0:
        raise UsageError(f"ast.dense_epochs must be 0 or more, got {ast.dense_epochs}")
    if ast.dense_epochs and not ast.enabled:
        raise UsageError("ast.dense_epochs is the dense stage before AST; set ast.enabled=true as well")
    if ast.sb_history < 1:
        raise UsageError(f"ast.sb_history must be at least 1 (losses a percentile is taken among), got "
                         f"{ast.sb_history}")
    if ast.sb_beta is not None and not ast.sb_beta > 0:
        raise UsageError(f"ast.sb_beta must be above 0 (or none: 1/ast.target - 1), got {ast.sb_beta}")
    if ast.selection == "gate" and ast.gate == "seed":
        _check_seed_gate(config)


# What the AST paper's repository trains with beside its gate (`sparse.seed_gate`): the config must say so, so
# that config.json tells what ran.
SEED_GATE_SETTINGS = {"ast.pack": False, "ast.gains": "seed", "grad_clip": 1.0}


def _check_seed_gate(config) -> None:
    found = {"ast.pack": config.ast.pack, "ast.gains": config.ast.gains, "grad_clip": config.grad_clip}
    wrong = [key for key, value in SEED_GATE_SETTINGS.items() if found[key] != value]
    if wrong:
        settings = " ".join(f"{key}={str(value).lower()}" for key, value in SEED_GATE_SETTINGS.items())
        given = ", ".join(f"{key}={str(found[key]).lower()}" for key in wrong)
        raise UsageError(f"ast.gate=seed is the AST repository's training as a whole (one step per scoring batch, "
                         f"the seed gains, gradients clipped at 1.0), but {given}; set {settings}")
