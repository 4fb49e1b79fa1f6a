"""Several processes training one model on PyTorch's own distributed engine (`torch.distributed`).

A run is distributed when `torchrun` (`torch.distributed.run`) started it: torchrun sets `RANK`,
`WORLD_SIZE`, `LOCAL_RANK` and the rendezvous address in each process's environment. `init` joins that
group - NCCL on CUDA with one GPU per process (`LOCAL_RANK`), gloo on the CPU - and every collective then
waits at most `dist.timeout_s` seconds, so a rank that never arrives ends the run with an error, not a hang.

What lives here (the engine calls it, the command line only launches it):

- rank and world size, and sums over ranks (`all_reduce_sum`, `gather`);
- decisions every rank takes together, as PyTorch Lightning's `reduce_boolean_decision` takes them: a flag
  all-reduced so that one rank's "stop" stops all (`any_rank`), the largest of the ranks' clocks
  (`max_over_ranks`), and the stop reason of an epoch agreed once (`agree_on_stop`);
- `average_model`: the parameters and buffers averaged in place, so that local SGD's ranks evaluate and save
  one model;
- agreement checks: every rank hashes its resolved config, and ranks exchange their setup errors, so that
  a rank with another config or without its data stops all of them with one line naming the rank;
- `wrap`: `DistributedDataParallel` (PyTorch docs, "Distributed Data Parallel") with a communication hook
  that counts the bytes of every gradient bucket it all-reduces, or post-local SGD (Lin et al. 2020,
  "Don't use large mini-batches, use local SGD") with PyTorch's `post_localSGD_hook`,
  `PostLocalSGDOptimizer` and `PeriodicModelAverager`, counting the parameters each average reduces;
- `launch`: `cifar-lab train --nproc-per-node N` hands its own command to `torch.distributed.run`, after
  `check_process_count` (no more processes than the machine has devices) and `check_rendezvous_endpoint`
  (a port that another program holds). The ranks ask Linux to kill them when the launcher dies
  (`die_with_launcher`): a launcher killed with SIGKILL cannot stop them itself.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

from .errors import UsageError

# Set by `launch` for the ranks it starts: the PID of the launching process (the ranks' parent).
LAUNCHER_PID = "CIFAR_LAB_LAUNCHER_PID"
# How long a rendezvous may take: the nodes' joining (torchrun's `join_timeout`), and how long a program at
# the rendezvous endpoint may take to answer as a PyTorch store.
RENDEZVOUS_TIMEOUT_S = 60
STORE_ANSWER_S = 10


def launched() -> bool:
    """Whether torchrun (or another launcher with the same environment contract) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank: from the group, or before joining it (and after leaving) from torchrun's RANK."""
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def restart_count() -> int:
    """How often torchrun has restarted the group (`--max-restarts`); 0 on the first attempt."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def device_for(device: torch.device) -> torch.device:
    """One GPU per process: rank `LOCAL_RANK` of a machine trains on `cuda:LOCAL_RANK`."""
    if device.type == "cuda" and launched():
        return torch.device("cuda", local_rank())
    return device


def die_with_launcher() -> None:
    """Have Linux kill this rank when its parent, the launcher, dies (`prctl(PR_SET_PDEATHSIG)`).

    torchrun stops its ranks when it is interrupted or terminated, but a launcher killed with SIGKILL runs no
    code: without this its ranks would train on as orphans, writing into the run folder. If the launcher died
    before this call (under `launch`, which names itself in the ranks' environment), the parent is already
    another process and the rank ends at once. Elsewhere than Linux this does nothing.
    """
    if not launched() or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    libc = ctypes.CDLL(None, use_errno=True)
    arguments = [ctypes.c_ulong(value) for value in (int(signal.SIGKILL), 0, 0, 0)]
    if libc.prctl(ctypes.c_int(pr_set_pdeathsig), *arguments) != 0:
        return
    launcher = os.environ.get(LAUNCHER_PID)
    if launcher and os.getppid() != int(launcher):
        os.kill(os.getpid(), signal.SIGKILL)


def init(device: torch.device, timeout_s: float) -> bool:
    """Join the process group torchrun describes; return True if this call created it."""
    if active() or not launched():
        return False
    die_with_launcher()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(seconds=timeout_s)
    from torch.distributed.rendezvous import rendezvous

    store, rank_, world = next(rendezvous("env://", timeout=timeout))
    # After a restart (`--max-restarts`) the ranks meet in the same store again: a key prefix per attempt keeps
    # them from reading the addresses the previous attempt's processes published.
    store = dist.PrefixStore(f"cifar_lab/attempt_{restart_count()}", store)
    dist.init_process_group(backend, store=store, rank=rank_, world_size=world, timeout=timeout)
    return True


def shutdown() -> None:
    if active():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place (nothing to do in one process); returns it."""
    if active() and world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if active() and world_size() > 1:
        dist.barrier()


def any_rank(flag: bool, device) -> bool:
    """True on every rank when `flag` is true on at least one (e.g. a stop decided by a clock). A collective
    and a host sync: call it at points every rank reaches together, not per batch."""
    if not active() or world_size() == 1:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


CHECKS_PER_EPOCH = 10  # several processes: how often per epoch a condition inside it is agreed on


def stop_inside_epoch(flag: bool, batch_index: int, batches: int, device) -> bool:
    """Whether to stop inside an epoch on a condition each rank judges for itself (its clock against the time
    budget). One process: at once, no collective. Several: only at `CHECKS_PER_EPOCH` batch indices that
    every rank shares, where `any_rank` makes one decision for all; between them the ranks run on without a
    collective or a host sync."""
    if not active() or world_size() == 1:
        return flag
    every = max(1, math.ceil(batches / CHECKS_PER_EPOCH))
    return (batch_index + 1) % every == 0 and any_rank(flag, device)


def max_over_ranks(value: float, device) -> float:
    """The largest of the ranks' `value`s, on every rank (e.g. an epoch's seconds: the slowest rank's)."""
    if not active() or world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def agree_on_stop(reason: str, keep_going: str = "completed") -> str:
    """The stop reason every rank acts on: the first rank's (in rank order) that is not `keep_going`.

    Each rank decides from what it saw; one exchange per epoch makes the ranks stop at the same epoch even
    when their inputs differ (their clocks, say), instead of one rank leaving while the others wait in the
    next collective until the timeout.
    """
    for other in gather(reason):
        if other != keep_going:
            return other
    return keep_going


def average_model(model: torch.nn.Module, counter: Optional["CommCounter"] = None) -> None:
    """Average the floating-point parameters and buffers over ranks, in place, in one flat all-reduce.

    Local SGD's ranks step on their own between periodic averages, so at the end of an epoch each holds
    another model; after this they hold one (their mean), which is what is evaluated and saved. All-reduce
    hands every rank the same sum, so the ranks' weights are equal bit for bit.
    """
    if not active() or world_size() == 1:
        return
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if not tensors:
        return
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    if counter is not None:
        counter.add(flat.numel() * flat.element_size())
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(world_size())
    offset = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view(t.shape))
            offset += t.numel()


def precision_for_strategy(precision: str, strategy: str) -> str:
    """The precision a run of `strategy` trains in, from the one `precision=auto` resolved to: fp32 instead of
    fp16 under local SGD. fp16's GradScaler skips the optimizer step on a rank whose gradients overflowed;
    local SGD's ranks step on their own gradients, so their step counts, and with them the periodic
    averages (collectives), would fall out of step. (`validate` refuses an explicit precision=fp16.)"""
    return "fp32" if precision == "fp16" and strategy == "local_sgd" else precision


def gather(value) -> list:
    """`value` (any picklable object) of every rank, in rank order."""
    if not active() or world_size() == 1:
        return [value]
    values: list = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def check_same_config(config_dict: dict) -> None:
    """Every rank must train the same run: compare a hash of each rank's resolved config."""
    hashes = gather(digest(config_dict))
    for other, value in enumerate(hashes):
        if value != hashes[0]:
            raise UsageError(f"rank {other} resolved another config than rank 0 (config hash {value[:12]} vs "
                             f"{hashes[0][:12]}); launch every rank with the same --preset and --set")


def agree(error: Optional[str]) -> None:
    """Raise the first rank's setup error on every rank, so that none waits for the others in a collective."""
    errors = gather(error)
    for other, message in enumerate(errors):
        if message is not None:
            raise UsageError(message if world_size() == 1 else f"rank {other}: {message}")


def average_gradients(parameters) -> None:
    """Average `.grad` over ranks by hand: the last micro-batch of an epoch may have run under `no_sync`."""
    if not active() or world_size() == 1:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world_size())


# --- wrapping the model: DDP or post-local SGD, with the bytes each one sends ---------------------------

@dataclass
class CommCounter:
    """Bytes of the tensors handed to all-reduce on this rank (gradient buckets, averaged parameters)."""

    bytes: int = 0
    calls: int = 0

    def add(self, tensor_bytes: int) -> None:
        if world_size() > 1:  # one process sends nothing
            self.bytes += int(tensor_bytes)
            self.calls += 1


def _counting_allreduce_hook(state, bucket):
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    counter = state
    buffer = bucket.buffer()
    counter.add(buffer.numel() * buffer.element_size())
    return default_hooks.allreduce_hook(None, bucket)


class _LocalSGDHookState:
    """`PostLocalSGDState` plus the counter: gradients travel only during the warm-up steps."""

    def __init__(self, inner, counter: CommCounter):
        self.inner, self.counter = inner, counter


def _counting_local_sgd_hook(state, bucket):
    from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import post_localSGD_hook

    if state.inner.iter < state.inner.start_localSGD_iter:
        buffer = bucket.buffer()
        state.counter.add(buffer.numel() * buffer.element_size())
    return post_localSGD_hook(state.inner, bucket)


def _counting_averager(period: int, warmup_steps: int, counter: CommCounter):
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

    class CountingAverager(PeriodicModelAverager):
        """PyTorch's periodic averager; each average all-reduces one flat tensor of the parameters."""

        def average_parameters(self, params):
            params = list(params)
            if self.step >= self.warmup_steps and (self.step - self.warmup_steps) % self.period == 0:
                tensors = [p for group in params for p in group["params"]] if params and isinstance(
                    params[0], dict) else params
                counter.add(sum(p.numel() * p.element_size() for p in tensors if p.grad is not None))
            super().average_parameters(params)

    return CountingAverager(period=period, warmup_steps=warmup_steps)


def wrap(model: torch.nn.Module, device: torch.device, optimizer: torch.optim.Optimizer, dist_config):
    """The model as DDP trains it, the optimizer the step calls, and the byte counter.

    `strategy=ddp`: every backward all-reduces the gradient buckets (averaged, so each rank steps with the
    gradient of the global batch). `strategy=local_sgd`: after `local_sgd_warmup_steps` steps of that, ranks
    step on their own gradients and average their parameters every `local_sgd_period` steps.
    """
    from torch.nn.parallel import DistributedDataParallel

    counter = CommCounter()
    ids = [device.index] if device.type == "cuda" else None
    wrapped = DistributedDataParallel(model, device_ids=ids)
    if dist_config.strategy == "local_sgd":
        from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import PostLocalSGDState
        from torch.distributed.optim import PostLocalSGDOptimizer

        warmup = dist_config.local_sgd_warmup_steps
        # post_local_gradient_allreduce=False: no gradient all-reduce at all after warm-up (plain local SGD,
        # not the intra-node hierarchical variant).
        inner = PostLocalSGDState(process_group=None, subgroup=None, start_localSGD_iter=warmup,
                                  post_local_gradient_allreduce=False)
        wrapped.register_comm_hook(_LocalSGDHookState(inner, counter), _counting_local_sgd_hook)
        stepping = PostLocalSGDOptimizer(optimizer, _counting_averager(dist_config.local_sgd_period, warmup,
                                                                       counter))
        return wrapped, stepping, counter
    wrapped.register_comm_hook(counter, _counting_allreduce_hook)
    return wrapped, optimizer, counter


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device, enabled: bool) -> torch.nn.Module:
    """BatchNorm statistics over the global batch (CUDA only, as PyTorch's SyncBatchNorm)."""
    if enabled and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


# --- launching: torch.distributed.run with an argument list ----------------------------------------------

def usable_devices(device_type: str) -> int:
    """Processes this machine can give a device each: GPUs on CUDA, else the CPU cores this process may use."""
    if device_type == "cuda":
        return torch.cuda.device_count()
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no CPU affinity outside Linux
        return os.cpu_count() or 1


def check_process_count(nproc_per_node: int, device_type: str, force: bool = False) -> None:
    """Refuse more processes than devices: on the CPU each extra process only competes for the same cores
    (and holds its own copy of the data), on CUDA a rank would have no GPU."""
    usable = usable_devices(device_type)
    if nproc_per_node <= usable or (force and device_type != "cuda"):
        return
    what = "CUDA GPUs" if device_type == "cuda" else "CPU cores"
    fix = f"use --nproc-per-node {max(usable, 1)} or fewer" + ("" if device_type == "cuda" else
                                                                 ", or add --force to start them anyway")
    raise UsageError(f"--nproc-per-node {nproc_per_node} is more processes than the {usable} {what} this machine "
                     f"can use (one each); {fix}")


def _endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--rdzv-endpoint {endpoint}: expected HOST:PORT, e.g. node0:29400")
    return host.strip("[]"), int(port)


def check_rendezvous_endpoint(endpoint: str, wait_s: float = STORE_ANSWER_S) -> None:
    """Refuse an endpoint whose port a program other than a PyTorch store holds.

    Nothing listening is fine: this node, or the first one, will host the store there. A listener is asked
    to answer as a `TCPStore`; one that accepts the connection and stays silent would leave torchrun waiting
    in its handshake with no timeout at all.
    """
    host, port = _endpoint(endpoint)
    try:
        with socket.create_connection((host, port), timeout=min(5.0, wait_s)):
            pass
    except OSError:
        return  # nobody listening (yet), or the host is not reachable: torchrun's own timeouts apply
    finished, answered = threading.Event(), []

    def ask() -> None:
        try:
            dist.TCPStore(host, port, is_master=False, timeout=datetime.timedelta(seconds=wait_s))
            answered.append(True)
        except Exception:  # it answered, but not as a store would
            pass
        finished.set()

    threading.Thread(target=ask, daemon=True).start()  # a silent peer blocks this thread, not the launcher
    finished.wait(wait_s)
    if not answered:
        raise UsageError(f"--rdzv-endpoint {endpoint}: another program holds port {port} on {host} (it accepted a "
                         f"connection but did not answer as a PyTorch rendezvous store within {wait_s:g} s); "
                         f"choose a free port")

def launch_arguments(command: list[str], nproc_per_node: int, nnodes: str = "1", node_rank: Optional[int] = None,
                     rdzv_endpoint: Optional[str] = None, max_restarts: int = 0) -> list[str]:
    """torchrun's arguments for running `python -m cifar_lab COMMAND...` on this machine's share of ranks."""
    if nproc_per_node < 1:
        raise UsageError(f"--nproc-per-node must be at least 1 (processes on this machine), got {nproc_per_node}")
    if max_restarts < 0:
        raise UsageError(f"--max-restarts must be 0 or more, got {max_restarts}")
    args = [f"--nproc-per-node={nproc_per_node}", f"--nnodes={nnodes}", f"--max-restarts={max_restarts}"]
    if rdzv_endpoint:
        _endpoint(rdzv_endpoint)
        args += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}",
                 f"--rdzv-conf=join_timeout={RENDEZVOUS_TIMEOUT_S}"]
        if node_rank is not None:
            args.append(f"--node-rank={node_rank}")
    elif str(nnodes) not in ("1", "1:1"):
        raise UsageError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT, an address every machine reaches "
                         f"(e.g. the first node's hostname and port 29400)")
    else:
        args.append("--standalone")
    # Only local rank 0 reaches the console: every rank raises the same agreed one-line error.
    args += ["--local-ranks-filter=0", "-m", "cifar_lab", *command]
    return args


def launch(command: list[str], **options) -> int:
    """Run `cifar_lab COMMAND...` in `nproc_per_node` processes through torchrun; the exit status of the group."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from torch.distributed.elastic.rendezvous.api import RendezvousError, RendezvousTimeoutError

    args = launch_arguments(command, **options)
    if options.get("rdzv_endpoint"):
        check_rendezvous_endpoint(options["rdzv_endpoint"])
    for name in ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the ranks' own messages say what went wrong
    os.environ[LAUNCHER_PID] = str(os.getpid())  # the ranks inherit it (`die_with_launcher`)
    try:
        torchrun.run(torchrun.parse_args(args))
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        return 2 if 2 in codes else (codes[0] if codes and codes[0] > 0 else 1)
    except RendezvousError as exc:
        where = options.get("rdzv_endpoint") or "this machine"
        if isinstance(exc, RendezvousTimeoutError):
            reason = f"not every node joined within {RENDEZVOUS_TIMEOUT_S} s"
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"the rendezvous at {where} failed: {reason}; start every node within "
                         f"{RENDEZVOUS_TIMEOUT_S} s of the first, with the same --rdzv-endpoint and --nnodes") from None
    finally:
        os.environ.pop(LAUNCHER_PID, None)
    return 0
