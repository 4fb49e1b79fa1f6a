"""The sample selections beside the engine's gate: the AST repository's gate (`ast.gate=seed`), Selective Backprop
(`ast.selection=selective_backprop`), the unpacked random subset, and the class mix every selection records."""
import pytest
import torch
import torch.nn as nn

from cifar_lab.config import ASTConfig, TrainConfig, apply_overrides, validate
from cifar_lab.engine import checkpoint
from cifar_lab.engine.sparse_step import SparseStep
from cifar_lab.errors import UsageError
from cifar_lab.sparse import seed_gate, selective_backprop
from cifar_lab.sparse.config import SEED_GATE_SETTINGS

SEED_GATE = dict(gate="seed", gains="seed", pack=False)


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def batch(n=16, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, 4, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def make_step(model=None, grad_clip=0.0, **ast):
    model = model if model is not None else tiny()
    config = TrainConfig(batch_size=16, channels_last=False, num_classes=5, grad_clip=grad_clip,
                         ast=ASTConfig(enabled=True, **ast))
    return SparseStep(model, torch.optim.SGD(model.parameters(), lr=0.1), None, config, torch.device("cpu"), "fp32")


# ---- the seed gate -------------------------------------------------------------------------------------------

def test_seed_gate_passes_above_theta_with_the_sigmoid_probability_and_never_below():
    """Mutant caught: the seed gate as a hard threshold (every sample above theta passes)."""
    scores = torch.tensor([0.3, 0.5, 0.55, 0.7, 0.95])
    theta = torch.tensor(0.5)
    draws = (torch.arange(2000) + 0.5) / 2000   # an even grid on [0, 1): the pass share is the probability
    passed = seed_gate.passes(scores.expand(2000, 5), theta, draws.unsqueeze(1).expand(2000, 5)).float().mean(0)
    expected = torch.sigmoid((scores - 0.5) / 0.15) * (scores > 0.5)
    assert torch.allclose(passed, expected, atol=1e-3)
    assert float(passed[3]) < 0.85   # sigmoid(0.2 / 0.15) = 0.79: a hard gate would pass it always


def test_energy_budget_allows_an_activation_only_above_10_and_regains_after_every_sample():
    """Mutants caught: the budget ignored (every wanted sample activates); `>=` for the repository's `>`."""
    budget = seed_gate.EnergyBudget()
    # From 100, each activation nets -10 + 1: ten activations leave exactly 10, which is not enough; the
    # regained 1 makes 11, enough for one more.
    assert budget.spend([True] * 12, [1.0] * 12) == [True] * 10 + [False, True]
    assert budget.energy == pytest.approx(2.0)
    assert budget.spend([False] * 3, [50.0] * 3) == [False] * 3 and budget.energy == 100.0   # capped at 100


def test_the_seed_gates_controller_counts_its_activations_and_not_the_fallback():
    """Mutant caught: fallback samples counted as activations for the seed gate's controller."""
    step = make_step(**SEED_GATE)
    step.controller.theta = torch.tensor(1.0)   # nothing passes: the fallback trains 2 random samples
    step.train_batch(*batch())
    assert int(step.controller.activated) == 0 and int(step.controller.processed) == 16
    row = step.end_epoch()
    assert row["fallback_batches"] == 1 and row["samples_trained"] == row["active_samples"] == 2


def test_seed_gate_state_round_trips_through_a_checkpoint(tmp_path):
    """Mutant caught: the energy budget (or the cumulative counts) left out of the step's state, so a resumed
    run starts with a full budget."""
    step = make_step(model=tiny(), **SEED_GATE)
    for i in range(6):
        step.train_batch(*batch(seed=i))
    assert step.energy.energy < seed_gate.ENERGY_MAX   # the budget holds something to restore
    checkpoint.save(tmp_path / "s.pt", {"model": step.model.state_dict(), "config": {}, "step": step.state_dict()})
    restored = make_step(model=tiny(), **SEED_GATE)
    state = checkpoint.load(tmp_path / "s.pt")
    restored.model.load_state_dict(state["model"])
    restored.load_state_dict(state["step"])
    assert restored.energy.energy == step.energy.energy
    restored.start_epoch(1)   # as a resumed run starts its next epoch: AST has started, nothing is reset
    step.start_epoch(1)
    for i in range(6, 10):
        for s in (step, restored):
            s.train_batch(*batch(seed=i))
    assert restored.energy.energy == step.energy.energy
    for name in ("theta", "ema", "integral", "activated", "processed"):
        assert torch.equal(getattr(restored.controller, name), getattr(step.controller, name))


def test_the_seed_gate_is_refused_without_its_repositorys_training_settings():
    """Mutant caught: `ast.gate=seed` accepted with packing (or without clipping, or with the tuned gains), so
    config.json would not say what trained."""
    config = apply_overrides(TrainConfig(), {"ast.enabled": True, "ast.gate": "seed", "dataset": "synthetic"})
    with pytest.raises(UsageError, match="ast.pack=false ast.gains=seed grad_clip=1.0"):
        validate(config)
    validate(apply_overrides(config, SEED_GATE_SETTINGS))


def test_seed_gate_steps_once_per_scoring_batch_with_the_gradient_clipped(monkeypatch):
    """Mutant caught: the seed gate packing its samples, or stepping without the clip it is configured with."""
    step = make_step(grad_clip=1.0, **SEED_GATE)
    norms = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm: norms.append(max_norm) or clip(params, max_norm))
    for i in range(3):
        step.train_batch(*batch(seed=i))
    row = step.end_epoch()
    assert row["optimizer_steps"] == 3 and norms == [1.0, 1.0, 1.0]


# ---- Selective Backprop --------------------------------------------------------------------------------------

def test_loss_percentile_is_the_share_of_the_recent_history_strictly_below():
    """Mutants caught: a history that never forgets (its length ignored); `<=` counted as below."""
    history = selective_backprop.LossHistory(1000, "cpu")
    history.add(torch.arange(2000.0))   # only the last 1000 (1000 .. 1999) stay
    assert history.filled == 1000
    got = history.percentile(torch.tensor([1000.0, 1500.0, 1999.5, 10.0]))
    assert torch.allclose(got, torch.tensor([0.0, 0.5, 1.0, 0.0]))


def test_selective_backprop_keeps_with_probability_percentile_to_the_beta():
    """Mutant caught: keeping by loss rank (or percentile) with beta ignored."""
    history = selective_backprop.LossHistory(100, "cpu")
    history.add(torch.arange(96.0))
    losses = torch.tensor([24.0, 48.0, 72.0, 96.5])
    draws = (torch.arange(1000) + 0.5) / 1000   # an even grid on [0, 1): the kept share is the probability
    kept = []
    for d in draws:
        history.filled, history.position = 96, 96   # the batch joins the same history at every draw
        kept.append(selective_backprop.select(losses, history, beta=2.0, draws=d.expand(4)))
    percentile = history.percentile(losses)   # among the 96 and the batch itself: 0.24, 0.49, 0.74, 0.99
    assert torch.allclose(percentile, torch.tensor([0.24, 0.49, 0.74, 0.99]))
    assert torch.allclose(torch.stack(kept).float().mean(0), percentile ** 2, atol=2e-3)


def test_the_default_beta_keeps_the_target_share_of_a_stationary_stream():
    """Mutant caught: the default beta not derived from the target (e.g. beta 1, which keeps half)."""
    config = ASTConfig(selection="selective_backprop", target=0.1)
    beta = selective_backprop.resolved_beta(config)
    assert beta == pytest.approx(9.0)
    gen = torch.Generator().manual_seed(0)
    history = selective_backprop.LossHistory(config.sb_history, "cpu")
    kept = [selective_backprop.select(torch.rand(128, generator=gen), history, beta, torch.rand(128, generator=gen))
            for _ in range(200)]
    assert float(torch.cat(kept[8:]).float().mean()) == pytest.approx(0.1, abs=0.01)


def test_selective_backprop_pays_for_its_scoring_pass_and_skips_an_empty_step():
    """Mutants caught: Selective Backprop's scoring forward left out of the compute; an unpacked step on an
    empty selection (a NaN loss)."""
    # beta 1000: even the batch's largest loss, at percentile 15/16, is kept with probability 1e-28
    step = make_step(selection="selective_backprop", pack=False, sb_beta=1000.0)
    before = [p.detach().clone() for p in step.model.parameters()]
    step.train_batch(*batch())
    row = step.end_epoch()
    assert row["active_samples"] == row["samples_trained"] == row["optimizer_steps"] == 0
    assert all(torch.equal(p, q) for p, q in zip(step.model.parameters(), before))
    assert row["compute_vs_dense_model"] == pytest.approx(16 / (3 * 16))   # the scoring forward alone


# ---- the unpacked random twin and the class mix -------------------------------------------------------------

def test_random_unpacked_trains_the_fixed_share_of_each_batch_in_its_own_step():
    """Mutant caught: `ast.pack=false` ignored by the random subset (its samples packed into full batches)."""
    step = make_step(selection="random", pack=False, target=0.25)
    sizes = []
    original = step.optimize
    step.optimize = lambda x, y, **kw: (sizes.append(len(y)), original(x, y, **kw))[1]
    for i in range(5):
        step.train_batch(*batch(seed=i))
    row = step.end_epoch()
    assert sizes == [4] * 5 and row["optimizer_steps"] == 5
    assert row["compute_vs_dense_model"] == pytest.approx(0.25)   # no scoring pass


@pytest.mark.parametrize("ast", [dict(pack=False), dict(pack=True), dict(selection="random"),
                                 dict(selection="selective_backprop"), SEED_GATE], ids=str)
def test_the_class_mix_counts_the_selected_samples_only(ast):
    """Mutant caught: the per-class counts taken from the whole scoring batch instead of its selection."""
    step = make_step(**ast)
    selected = []
    original = step.optimize
    step.optimize = lambda x, y, **kw: (selected.append(y.clone()), original(x, y, **kw))[1]
    images, labels = batch(n=16, seed=3)
    for _ in range(3):
        step.train_batch(images, labels)
    row = step.end_epoch()
    trained = torch.cat(selected)
    assert row["selected_per_class"] == torch.bincount(trained, minlength=5).tolist()
    assert sum(row["selected_per_class"]) == row["active_samples"] < 3 * 16
