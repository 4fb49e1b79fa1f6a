"""The PI controller and the significance score, on synthetic score streams (no network involved)."""
import pytest
import torch

from cifar_lab.sparse import sim
from cifar_lab.sparse.config import GAIN_SETS
from cifar_lab.sparse.controller import CumulativeRateController, PIController
from cifar_lab.sparse.score import significance
from cifar_lab.engine import checkpoint


@pytest.fixture(scope="module")
def stream():
    return sim.score_stream(400, batch_size=128, seed=1)


def test_score_is_in_unit_interval_and_follows_the_formula():
    losses = torch.tensor([0.1, 1.0, 5.0, 2.0])
    intensity = torch.tensor([1.0, 1.0, 3.0, 0.0])
    s = significance(losses, intensity, 0.7, 0.3)
    mean_l, mean_v = losses.mean(), intensity.mean()
    expected = 0.7 * torch.clamp(losses / mean_l, max=2) / 2 + 0.3 * torch.clamp(intensity / mean_v, max=2) / 2
    assert torch.allclose(s, expected)
    assert float(s.min()) >= 0 and float(s.max()) <= 1
    assert float(s[2]) == pytest.approx(1.0)  # both terms at twice their mean or more: the clamp


def test_tuned_gains_settle_at_the_target_within_an_epoch_and_the_integral_stays_bounded(stream):
    trace = sim.simulate(stream, target=0.10, **GAIN_SETS["tuned"])
    settle = trace.settle_batch(0.10, tolerance=0.02)
    assert 0 <= settle <= 40  # the synthetic dataset's first epoch is 40 batches
    epochs = trace.epoch_rates(40)
    assert torch.all((epochs[1:] - 0.10).abs() < 0.01)
    assert float(trace.integral.abs().max()) < 50
    assert float(trace.theta.min()) >= 0 and float(trace.theta.max()) <= 1


@pytest.mark.parametrize("target", [0.05, 0.3])
def test_tuned_gains_track_other_targets(stream, target):
    trace = sim.simulate(stream, target=target, **GAIN_SETS["tuned"])
    assert abs(float(trace.rate[100:].mean()) - target) < 0.01


def test_seed_gains_integral_is_held_by_the_anti_windup_clamp(stream):
    trace = sim.simulate(stream, target=0.10, **GAIN_SETS["seed"])
    assert float(trace.integral.abs().max()) <= 50 + 1e-4
    # The seed's gains have not settled after 10 epochs of 40 batches: the book shows why.
    assert trace.settle_batch(0.10, tolerance=0.02) == -1 or trace.settle_batch(0.10, tolerance=0.02) > 40


def test_anti_windup_decays_the_integral_while_theta_is_pinned():
    controller = PIController(target=0.1, kp=1.0, ki=0.01, theta0=0.5)
    for _ in range(5):
        controller.update(1.0)  # everything passes: theta runs to its upper clamp
    assert float(controller.theta) == 1.0
    before = float(controller.integral)
    controller.update(1.0)
    assert float(controller.integral) == pytest.approx(0.9 * before)


def test_controller_state_round_trips_through_a_checkpoint(tmp_path, stream):
    controller = PIController(0.1, 0.2, 0.001)
    for batch in stream[:30]:
        controller.update((batch > controller.theta).float().mean())
    checkpoint.save(tmp_path / "c.pt", {"model": {}, "config": {}, "controller": controller.state_dict()})
    restored = PIController(0.1, 0.2, 0.001)
    restored.load_state_dict(checkpoint.load(tmp_path / "c.pt")["controller"])
    for batch in stream[30:60]:
        for c in (controller, restored):
            c.update((batch > c.theta).float().mean())
    for name in ("theta", "ema", "integral", "updates"):
        assert torch.equal(getattr(controller, name), getattr(restored, name))
    assert int(restored.updates) == 60


def test_the_seed_gates_controller_is_fed_the_rate_since_it_started_in_its_repositorys_order():
    """Mutants caught: the seed gate's controller fed each batch's own rate (as the engine's is); its integral
    accumulated before the threshold step uses it (the engine's order)."""
    controller = CumulativeRateController(target=0.1, kp=0.5, ki=0.01, theta0=0.5, ema_alpha=0.3)
    controller.update(64, 64)   # every sample of the first batch
    controller.update(0, 64)    # none of the second: the cumulative rate is 0.5, the batch's own 0
    ema1 = 0.3 * 1.0 + 0.7 * 0.1
    ema2 = 0.3 * 0.5 + 0.7 * ema1
    theta1 = 0.5 + 0.5 * (ema1 - 0.1)                       # the integral starts at 0
    theta2 = theta1 + 0.5 * (ema2 - 0.1) + 0.01 * (ema1 - 0.1)   # the integral of the batches before
    assert float(controller.ema) == pytest.approx(ema2, rel=1e-6)
    assert float(controller.theta) == pytest.approx(theta2, rel=1e-6)
    assert float(controller.integral) == pytest.approx((ema1 - 0.1) + (ema2 - 0.1), rel=1e-6)
    assert int(controller.activated) == 64 and int(controller.processed) == 128


def test_the_seed_gates_anti_windup_tests_the_proposed_threshold():
    """Mutant caught: the anti-windup test on the threshold before the step (the engine's rule), which lets the
    integral grow while the step takes theta past 0.99."""
    controller = CumulativeRateController(target=0.1, kp=1.0, ki=0.0, theta0=0.9, ema_alpha=1.0)
    controller.integral = torch.tensor(2.0)
    controller.update(50, 100)   # error 0.4: proposed 1.3, outside (0.01, 0.99): the integral decays
    assert float(controller.theta) == 1.0
    assert float(controller.integral) == pytest.approx(0.9 * 2.0)
