"""The pieces of multi-process training, checked in one two-process gloo group.

The test starts this file under torchrun (`python -m torch.distributed.run --nproc-per-node 2 THIS_FILE OUT`);
each rank runs `worker`, records what it saw in OUT/rank_R.json, and the tests compare the ranks' records:
sharding without duplicates or gaps, the ranks' evaluation of their averaged models equal to one process's
evaluation of that average, files written by rank 0 only, local SGD's periodic averaging and its byte count,
and the one-line errors of disagreeing ranks.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _sharding(rank: int, world: int) -> dict:
    import torch

    from cifar_lab.data.loader import DeviceLoader
    from cifar_lab.data.reference import make_loader

    n = 103
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    labels = torch.arange(n)
    common = dict(device="cpu", mean=(0.5,) * 3, std=(0.5,) * 3, input_size=4)
    train = DeviceLoader(images, labels, 8, train=True, policy="none", generator=torch.Generator(),
                         **common).sharded(rank, world, seed=5)
    test = DeviceLoader(images, labels, 8, train=False, **common).sharded(rank, world, seed=5)
    seen = {}
    for epoch in (0, 1):
        train.set_epoch(epoch)
        seen[f"train_{epoch}"] = [int(y) for _, batch in train for y in batch]
    seen["test"] = [int(y) for _, batch in test for y in batch]
    seen["train_batches"] = len(train)
    reference = make_loader(images, labels, 8, mean=(0.5,) * 3, std=(0.5,) * 3, train=True, num_workers=0, seed=5,
                            input_size=32).sharded(rank, world, seed=5)
    reference_test = make_loader(images, labels, 8, mean=(0.5,) * 3, std=(0.5,) * 3, train=False, num_workers=0,
                                 input_size=32).sharded(rank, world, seed=5)
    reference.set_epoch(1)
    seen["reference_train"] = [int(y) for _, batch in reference for y in batch]
    seen["reference_test"] = [int(y) for _, batch in reference_test for y in batch]
    return seen


def _evaluation(rank: int, world: int) -> dict:
    """Every rank starts from a model of its own (as local SGD's ranks hold between averages), averages it with
    the others', and evaluates its share; one process evaluates that average on the whole split."""
    import torch

    from cifar_lab import distributed, models
    from cifar_lab.data.loader import DeviceLoader
    from cifar_lab.engine.evaluate import evaluate

    def built(seed: int):
        torch.manual_seed(seed)
        return models.build("simple_cnn", num_classes=10)

    states = [built(r).state_dict() for r in range(world)]
    average = built(0)
    average.load_state_dict({k: sum(state[k] for state in states) / world for k in states[0]})
    model = built(rank)
    own = [float(sum(p.double().sum() for p in model.parameters()))]
    distributed.average_model(model)
    torch.manual_seed(100)
    images = torch.randint(0, 256, (37, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (37,))
    common = dict(device="cpu", mean=(0.5,) * 3, std=(0.5,) * 3, train=False)
    whole = evaluate(average, DeviceLoader(images, labels, 8, **common), 10, "cpu")
    shard = DeviceLoader(images, labels, 8, **common).sharded(rank, world, seed=0)
    parts = evaluate(model, shard, 10, "cpu", reduce=distributed.all_reduce_sum)

    def plain(result):
        return {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in result.items()}

    return {"whole": plain(whole), "parts": plain(parts), "own_models": distributed.gather(own),
            "averaged_equal": all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                     average.state_dict().values()))}


def _outputs(rank: int, root: Path) -> None:
    from cifar_lab import presets
    from cifar_lab.engine import train

    config = presets.resolve("cifar10-simplecnn", [
        ("dataset", "synthetic"), ("synthetic_train_size", "64"), ("synthetic_test_size", "32"), ("epochs", "1"),
        ("batch_size", "16"), ("progress", "false"), ("data_root", str(root / "data"))])
    train(config, root / f"out_rank{rank}")  # each rank names its own folder: only rank 0's may appear


def _local_sgd(rank: int, world: int) -> dict:
    import torch

    from cifar_lab import distributed
    from cifar_lab.config import DistConfig

    record = {}
    for strategy in ("ddp", "local_sgd"):
        torch.manual_seed(0)
        model = torch.nn.Linear(10, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        wrapped, stepping, counter = distributed.wrap(model, torch.device("cpu"), optimizer,
                                                      DistConfig(strategy=strategy, local_sgd_period=2))
        spread = []
        for step in range(4):
            torch.manual_seed(100 * rank + step)  # every rank its own data
            wrapped(torch.randn(8, 10)).square().mean().backward()
            stepping.step()
            stepping.zero_grad()
            flat = torch.cat([p.detach().flatten() for p in model.parameters()])
            gathered = distributed.gather(flat.tolist())
            spread.append(max(abs(a - b) for a, b in zip(gathered[0], gathered[-1])))
        record[strategy] = {"spread": spread, "bytes": counter.bytes,
                            "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}
    return record


def _budget_checks(rank: int) -> dict:
    """How often an epoch of 40 batches agrees on its time budget, and what it decides when only rank 1's
    clock has run out."""
    import torch.distributed as dist

    from cifar_lab import distributed

    calls, real = [], dist.all_reduce
    dist.all_reduce = lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs)
    try:
        stops = [distributed.stop_inside_epoch(rank == 1, index, 40, "cpu") for index in range(40)]
    finally:
        dist.all_reduce = real
    return {"collectives": len(calls), "first_stop": stops.index(True) if True in stops else None}


def _errors(rank: int) -> dict:
    from cifar_lab import distributed
    from cifar_lab.errors import UsageError

    found = {}
    for name, call in (("config", lambda: distributed.check_same_config({"lr": 0.1 * (rank + 1)})),
                       ("data", lambda: distributed.agree("no data under /nowhere" if rank == 1 else None))):
        try:
            call()
            found[name] = None
        except UsageError as exc:
            found[name] = str(exc)
    return found


def worker(out: Path) -> None:
    import torch.distributed as dist

    from cifar_lab import distributed

    distributed.init(__import__("torch").device("cpu"), 60)
    rank, world = distributed.rank(), distributed.world_size()
    record = {"sharding": _sharding(rank, world), "evaluation": _evaluation(rank, world),
              "local_sgd": _local_sgd(rank, world), "errors": _errors(rank), "budget": _budget_checks(rank)}
    _outputs(rank, out)  # joins and leaves no group of its own: the group exists already
    (out / f"rank_{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    distributed.shutdown()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           __file__, str(out)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]


def test_device_loader_shards_cover_each_epoch_once_without_duplicates(records):
    _, ranks = records
    n, world = 103, 2
    for epoch in (0, 1):
        parts = [r["sharding"][f"train_{epoch}"] for r in ranks]
        assert len(parts[0]) == len(parts[1]) == n // world      # the remainder (n mod world) is left out
        union = parts[0] + parts[1]
        assert len(set(union)) == len(union) == n - n % world   # no duplicates
    assert ranks[0]["sharding"]["train_0"] != ranks[0]["sharding"]["train_1"]  # a new permutation per epoch
    assert ranks[0]["sharding"]["train_batches"] == ranks[1]["sharding"]["train_batches"]
    assert sorted(ranks[0]["sharding"]["test"] + ranks[1]["sharding"]["test"]) == list(range(n))  # no gaps


def test_torchvision_route_shards_through_distributed_sampler(records):
    _, ranks = records
    train = [r["sharding"]["reference_train"] for r in ranks]
    assert len(train[0]) == len(train[1]) and not set(train[0]) & set(train[1])
    assert sorted(ranks[0]["sharding"]["reference_test"] + ranks[1]["sharding"]["reference_test"]) == list(range(103))


def test_evaluation_over_ranks_of_different_models_equals_one_process_evaluating_their_average(records):
    _, ranks = records
    own = ranks[0]["evaluation"]["own_models"]
    assert own[0] != own[1]  # the ranks began with different models
    for record in ranks:
        assert record["evaluation"]["averaged_equal"]
        whole, parts = record["evaluation"]["whole"], record["evaluation"]["parts"]
        for key in ("top1", "top5", "per_class", "confusion", "samples"):
            assert parts[key] == whole[key], key
        assert parts["loss"] == pytest.approx(whole["loss"], rel=1e-6)  # float32 per-batch sums


def test_only_rank_zero_writes_files(records):
    out, _ = records
    assert {p.name for p in (out / "out_rank0").iterdir()} >= {"config.json", "metrics.csv", "summary.json",
                                                               "evaluation.json", "last.pt", "environment.json"}
    assert not (out / "out_rank1").exists()


def test_local_sgd_averages_every_period_and_sends_fewer_bytes(records):
    _, ranks = records
    local, ddp = ranks[0]["local_sgd"]["local_sgd"], ranks[0]["local_sgd"]["ddp"]
    assert ddp["spread"] == [0.0] * 4                          # DDP: identical after every step
    assert local["spread"][0] == 0.0 and local["spread"][2] == 0.0   # averaged at steps 1 and 3
    assert local["spread"][1] > 0 and local["spread"][3] > 0         # apart in between
    assert local["bytes"] == 2 * local["param_bytes"]            # two averages, no gradient all-reduce
    assert ddp["bytes"] == 4 * ddp["param_bytes"]                # one gradient all-reduce per step
    assert local["bytes"] < ddp["bytes"]


def test_a_stop_inside_an_epoch_is_agreed_at_a_few_shared_batches_not_per_batch(records):
    _, ranks = records
    for record in ranks:
        assert record["budget"]["collectives"] == 10         # CHECKS_PER_EPOCH, not one per batch (40)
        assert record["budget"]["first_stop"] == 3           # batch 4: the first shared check; rank 0 stops too


def test_ranks_that_disagree_fail_with_one_line_naming_the_rank(records):
    _, ranks = records
    for record in ranks:
        assert record["errors"]["config"].startswith("rank 1 resolved another config than rank 0")
        assert record["errors"]["data"] == "rank 1: no data under /nowhere"


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
