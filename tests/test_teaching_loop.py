"""The plain training loops the book prints (cifar_lab/teaching.py) are the engine's loop, line for line.

Each loop and `engine.train` run the same config on the synthetic data, on the CPU in deterministic mode, and
must end with the same weights, bit for bit. Then one line of the printed loop is broken (the label smoothing
dropped, the schedule step left out, ...) and the same comparison must fail: the test sees what the lines do.
"""
import inspect
import textwrap

import pytest
import torch

from cifar_lab import presets
from cifar_lab.book import teaching
from cifar_lab.engine import train
from cifar_lab.errors import UsageError


def tiny(tmp_path, preset="cifar10-resnet18", **sets):
    overrides = {"dataset": "synthetic", "data_root": str(tmp_path / "data"), "progress": False,
                 "device": "cpu", "precision": "fp32", "deterministic": True, "channels_last": False,
                 "model": "simple_cnn", "epochs": 2, "batch_size": 32, "train_subset": 128, "test_subset": 32,
                 "save_checkpoints": False, "label_smoothing": 0.1}
    overrides.update(sets)
    return presets.resolve(preset, overrides)


def ast_config(tmp_path, **sets):
    # target 0.5: the buffer is drained about every second scoring batch, several times an epoch; one dense
    # warm-up epoch, then AST.
    sets = {"ast.target": 0.5, "ast.dense_epochs": 1, "epochs": 3, **sets}
    return tiny(tmp_path, "cifar10-simplecnn-ast", **sets)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def broken(function, line: str, replacement: str):
    """`function` recompiled from its printed source with one line changed."""
    source = textwrap.dedent(inspect.getsource(function))
    assert line in source, f"{line!r} is not in the printed loop any more"
    namespace = dict(vars(teaching))
    exec(compile(source.replace(line, replacement, 1), teaching.__file__, "exec"), namespace)
    return namespace[function.__name__]


def test_dense_loop_gives_the_engines_weights(tmp_path):
    config = tiny(tmp_path)
    model, accuracies = teaching.train_dense(config)
    engine = train(config)
    assert len(accuracies) == 2 and all(0.0 <= a <= 1.0 for a in accuracies)
    assert same_weights(model, engine.model)
    assert accuracies[-1] == engine.summary["final_acc"]


@pytest.mark.parametrize("line, replacement", [
    ("label_smoothing=config.label_smoothing", "label_smoothing=0.0"),   # drop label smoothing
    ("scheduler.step()", "pass"),                                         # forget the schedule
    ("optimizer.zero_grad()", "pass"),                                    # let gradients pile up
])
def test_dense_loop_with_one_line_broken_gives_other_weights(tmp_path, line, replacement):
    config = tiny(tmp_path, epochs=1)
    model, _ = broken(teaching.train_dense, line, replacement)(config)
    assert not same_weights(model, train(config).model)


def test_ast_loop_gives_the_engines_weights(tmp_path):
    config = ast_config(tmp_path)
    model, accuracies = teaching.train_ast(config)
    engine = train(config)
    assert engine.summary["ast_epochs"] == 2 and 0.2 < engine.summary["activation_rate"] < 0.8
    assert same_weights(model, engine.model)
    assert accuracies == [row["test_acc"] for row in engine.history]


@pytest.mark.parametrize("line, replacement", [
    ("selected = scores > controller.theta", "selected = scores > 0.5"),           # no controller
    ("scoring_mode(model)", "model.train()"),                                      # dropout on while scoring
    ("label_smoothing=config.label_smoothing", "label_smoothing=0.0"),
])
def test_ast_loop_with_one_line_broken_gives_other_weights(tmp_path, line, replacement):
    config = ast_config(tmp_path)
    model, _ = broken(teaching.train_ast, line, replacement)(config)
    assert not same_weights(model, train(config).model)


@pytest.mark.parametrize("sets, named", [
    ({"grad_accum": 2}, "grad_accum"),
    ({"precision": "bf16"}, "precision"),
    ({"ast.pack": False}, "ast.pack"),
])
def test_configs_the_plain_loop_does_not_show_are_refused(tmp_path, sets, named):
    config = ast_config(tmp_path, **sets)
    with pytest.raises(UsageError, match=named) as err:
        teaching.train_ast(config)
    assert "\n" not in str(err.value)
