"""AST as a mode of the one training loop: score the batch, gate it, train on the active samples only.

The trainer builds a `SparseStep` when `config.ast.enabled` and drives it through the `TrainStep` interface
exactly like the dense step. The scores, the gate's controller and its gains live in `cifar_lab.sparse`.

Per batch: a no-grad scoring forward pass over all B images -> significance scores -> hard
gate `s > theta` (or a sigmoid gate) -> fallback of `ast.fallback_samples` random samples when nothing
passes -> one controller update -> forward and backward on the active samples only.

Other selections through the same step, so that every variant the AST chapter compares runs in this one loop:
  * `ast.gate=seed`: the gate of the AST paper's repository (`sparse.seed_gate`: stochastic above theta, an
    energy budget, the controller on the cumulative rate, `sparse.controller.CumulativeRateController`),
    trained unpacked with gradients clipped at 1.0 as the repository does (`sparse.config.SEED_GATE_SETTINGS`);
  * `ast.selection=selective_backprop`: Selective Backprop (`sparse.selective_backprop`), from the same
    scoring pass's per-sample losses, packed or unpacked;
  * `ast.selection=random`: a fixed-size random subset at the target rate, with no scoring pass, packed or
    unpacked.
Per epoch the step also counts the selected samples of each class (`selected_per_class`), the class mix that
the selection trains on.

Model mode of the scoring pass: BatchNorm stays in training mode, dropout is switched off.
  * BatchNorm: the training forward normalises with batch statistics, so scoring with the same (batch)
    statistics measures the loss the training step would see; eval mode would use running averages that
    lag the weights early in training. The scoring pass also updates the running averages from the whole,
    unselected batch, which is what evaluation later normalises with; the training forward on the active
    subset (biased towards hard samples, and small) updates them as well.
  * Dropout: its mask is noise, not significance; scoring without it keeps the ranking of samples stable
    and consumes no random numbers.

Host synchronisation: gating, fallback and the controller are tensor ops on the device. Training on a
data-dependent number of samples needs that number on the host once: with `ast.pack=false` that is one
sync per batch (`nonzero`, the one unavoidable sync of variable-size training); with `ast.pack=true`
selected samples are scattered into a device buffer without a sync and the buffer's fill level is read
only when it may hold a full training batch (about once per optimizer step). `ast.selection=random`
(the baseline) takes a fixed-size random subset and never syncs.

Several processes (DDP): one global threshold. Each batch's active and scored counts are summed over ranks
(one small all-reduce), and the controller is fed the global rate, so every rank gates with the same theta
and holds the same controller state. A rank's loss is its mean over its active samples times
`local active x world / global active`; DDP averages gradients over ranks, so the step's gradient is the mean
over the union of the ranks' active samples - single-process AST over the ranks' batches together. Packing
steps together: at each read of the fill levels the ranks exchange them and all take as many training steps
(a rank whose buffer is empty for a step contributes a zero-weighted sample). Activation rate, energy and
compute figures are summed over ranks.
"""
from __future__ import annotations

import copy
import csv
import io
import math
from pathlib import Path

import torch
import torch.nn as nn

from .. import distributed
from ..io import atomic_write, atomic_write_text
from ..sparse import seed_gate, selective_backprop
from ..sparse.config import resolved_gains
from ..sparse.controller import CumulativeRateController, PIController
from ..sparse.score import score_batch
from .steps import DenseStep

# The forward-pass-equivalent model of compute: a training step (forward + backward) costs about three
# forwards. `compute_vs_dense_model` uses it; `compute_vs_dense_flops` counts the real model's FLOPs instead.
FORWARD_COST, TRAIN_COST = 1.0, 3.0
FLOP_COUNT_SAMPLES = 8   # FLOPs grow linearly with the batch: a few samples give the per-sample counts
TRACE_COLUMNS = ("theta", "rate", "ema", "integral")
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


class SparseStep(DenseStep):
    def __init__(self, model, optimizer, scaler, config, device, precision, scheduler=None, batches_per_epoch=None):
        self.ast = config.ast
        self.seed_gate = config.ast.selection == "gate" and config.ast.gate == "seed"
        controller = CumulativeRateController if self.seed_gate else PIController
        self.controller = controller.from_config(config.ast, device)
        self.energy = seed_gate.EnergyBudget() if self.seed_gate else None
        self.loss_history = selective_backprop.LossHistory(config.ast.sb_history, device) \
            if config.ast.selection == "selective_backprop" else None
        self.sb_beta = selective_backprop.resolved_beta(config.ast)
        self.num_classes = config.num_classes
        # Own random stream (fallback picks, random subsets, stochastic gates, Selective Backprop's draws), saved
        # in checkpoints.
        self.generator = torch.Generator(device=device).manual_seed(config.seed + 0xA57)
        self.ast_started = False
        self.trace: list[dict] = []   # per epoch: {"epoch", "phase", "values": [batches, 4] CPU tensor}
        self.dropouts = [m for m in model.modules() if isinstance(m, _DROPOUT)]
        self.buffer_images = self.buffer_labels = None
        self.flops_per_sample: dict | None = None   # {"forward", "train"}: counted once, on the first AST batch
        self.recorded_scores: list[torch.Tensor] = []  # the first `ast.record_scores` full batches' scores
        super().__init__(model, optimizer, scaler, config, device, precision, scheduler, batches_per_epoch)

    # ---- epoch bookkeeping -------------------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self.dense_epoch = epoch < self.ast.dense_epochs
        if not self.dense_epoch and not self.ast_started:
            self.controller.reset()  # AST starts now: fresh threshold, EMA and integral
            for state in (self.energy, self.loss_history):  # a full budget, an empty loss history
                if state is not None:
                    state.reset()
            self.ast_started = True
        zero = lambda dtype=torch.long: torch.zeros((), dtype=dtype, device=self.device)  # noqa: E731
        self.active, self.fallbacks = zero(), zero()
        self.selected_per_class = torch.zeros(self.num_classes, dtype=torch.long, device=self.device)
        self.theta_sum = zero(torch.float32)
        self.scored = self.host_syncs = 0
        self.trace_rows: list[torch.Tensor] = []
        self.fill = zero()
        self.fill_upper = 0            # host-side bound on the buffer fill since the last read
        self.fill_expected = 0.0       # host-side estimate (target rate) since the last read

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        batch = labels.shape[0]
        self.scored += batch
        self.batches_seen += 1
        if self.dense_epoch:
            self.optimize(images, labels)
            self.active += batch
            self.selected_per_class.index_add_(0, labels, torch.ones_like(labels))
            return
        if self.flops_per_sample is None:
            base = self.model.module if hasattr(self.model, "no_sync") else self.model  # DDP holds it in .module
            self.flops_per_sample = count_flops_per_sample(base, images, labels, self.criterion, self.autocast)
        theta = self.controller.theta
        if self.ast.selection == "random":
            # Fixed-size random subset at the target rate: no scoring pass, no controller.
            count = max(1, round(self.ast.target * batch))
            index = torch.randperm(batch, device=self.device, generator=self.generator)[:count]
            mask = torch.zeros(batch, dtype=torch.bool, device=self.device).index_fill_(0, index, True)
            self.active += count
            self._record(theta, torch.tensor(count / batch, device=self.device))
        else:
            passed = None  # the seed gate's activations, fallback samples left out (what its controller counts)
            if self.ast.selection == "selective_backprop":
                mask = self._selective_backprop(images, labels)
            elif self.seed_gate:
                mask, passed = self._seed_gate(images, labels, theta)
            else:
                mask = self._gate(images, labels, theta)
            count = mask.sum()
            if self.world > 1:  # the global rate: every rank feeds the controller the same number
                counts = [count, torch.tensor(batch, device=self.device)]
                counts += [torch.tensor(passed, device=self.device)] if passed is not None else []
                summed = distributed.all_reduce_sum(torch.stack(counts))
                rate, global_batch = summed[0].float() / summed[1], summed[1]
                self.global_active = summed[0]
                passed = summed[2] if passed is not None else None
                # Kept on the device: a float() here would wait for the GPU on every batch.
                weight = global_batch.float() / (self.config.batch_size * self.world)
            else:
                rate, weight, global_batch = count.float() / batch, batch / self.config.batch_size, batch
            if self.seed_gate:
                self.controller.update(passed, global_batch)
            elif self.ast.selection == "gate":
                # A short last batch moves the EMA in proportion to its size, not as much as a full one.
                self.controller.update(rate, weight=weight)
            self.active += count
            self._record(theta, rate)
        # The class mix of the selection: counted from the selected samples only, on the device.
        self.selected_per_class.index_add_(0, labels, mask.long())
        if self.ast.pack:
            self._pack(images, labels, mask, count)
        else:
            self._train_unpacked(images, labels, mask, count)

    def _train_unpacked(self, images, labels, mask, count) -> None:
        """One step on this batch's selected samples (the AST paper's variant)."""
        index = mask.nonzero().squeeze(1)  # the one host sync per batch: the subset's size
        if self.world > 1:
            total = count * self.world if self.ast.selection == "random" else int(self.global_active)
            if len(index) == 0:  # nothing kept here: a zero-weighted sample keeps this rank in the all-reduce
                self.optimize(images[:1], labels[:1], weight=0.0, count=False)
            else:
                self.optimize(images[index], labels[index], weight=len(index) * self.world / max(1, total))
        elif len(index):  # Selective Backprop may keep nothing of a batch (the gates fall back to random picks)
            self.optimize(images[index], labels[index])

    def _score(self, images, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """The scoring pass: (significance, per-sample loss) of every sample, without gradients."""
        self.model.train()
        for module in self.dropouts:
            module.eval()
        try:
            with torch.no_grad(), self.autocast():
                logits = self.model(images)
        finally:
            for module in self.dropouts:
                module.train()
        scores, losses = score_batch(logits, labels, images, self.ast.loss_weight, self.ast.intensity_weight)
        recording = self.ast.selection == "gate" and len(self.recorded_scores) < self.ast.record_scores
        if recording and labels.shape[0] == self.config.batch_size:
            self.recorded_scores.append(scores.detach().to("cpu", torch.float16))  # a host sync, while recording
        return scores, losses

    def _gate(self, images, labels, theta) -> torch.Tensor:
        """Scoring pass, gate and fallback: a boolean mask of the active samples (device ops only)."""
        batch = labels.shape[0]
        scores, _ = self._score(images, labels)
        if self.ast.gate == "sigmoid":
            probability = torch.sigmoid((scores - theta) / self.ast.temperature)
            mask = torch.rand(batch, device=self.device, generator=self.generator) < probability
        else:
            mask = scores > theta
        nothing = ~mask.any()
        picks = torch.randperm(batch, device=self.device, generator=self.generator)[:self.ast.fallback_samples]
        fallback = torch.zeros(batch, dtype=torch.bool, device=self.device).index_fill_(0, picks, True)
        self.fallbacks += nothing
        return mask | (fallback & nothing)

    def _seed_gate(self, images, labels, theta) -> tuple[torch.Tensor, int]:
        """The AST repository's gate (`sparse.seed_gate`): the mask of the samples trained on (fallback included)
        and how many the gate itself activated. The budget is spent on the host, sample by sample: one host sync
        per batch, which unpacked training (the repository's) needs for the subset's size anyway."""
        batch = labels.shape[0]
        scores, _ = self._score(images, labels)
        draws = torch.rand(2, batch, device=self.device, generator=self.generator)
        wanted = seed_gate.passes(scores, theta, draws[0])
        activated = self.energy.spend(wanted.tolist(), seed_gate.regained(draws[1]).tolist())
        mask = torch.tensor(activated, dtype=torch.bool, device=self.device)
        passed = sum(activated)
        if passed == 0:  # the repository's fallback: a few random samples, not counted as activations
            picks = torch.randperm(batch, device=self.device, generator=self.generator)[:self.ast.fallback_samples]
            mask.index_fill_(0, picks, True)
            self.fallbacks += 1
        return mask, passed

    def _selective_backprop(self, images, labels) -> torch.Tensor:
        """Selective Backprop's choice from the scoring pass's per-sample losses (device ops only)."""
        _, losses = self._score(images, labels)
        draws = torch.rand(labels.shape[0], device=self.device, generator=self.generator)
        return selective_backprop.select(losses, self.loss_history, self.sb_beta, draws)

    def _record(self, theta, rate) -> None:
        self.theta_sum += theta
        self.trace_rows.append(torch.stack([theta, rate.float(), self.controller.ema, self.controller.integral]))

    # ---- packing: selected samples of several scoring batches -> full training batches ------------------
    def _pack(self, images, labels, mask, count) -> None:
        batch, full = labels.shape[0], self.config.batch_size
        if self.buffer_images is None or self.buffer_images.shape[1:] != images.shape[1:]:
            # Room for one full batch plus the scoring batches between two reads of the fill level, plus a
            # dump region of one batch where the unselected samples are written (keeps the indices unique).
            between = min(16, math.ceil(1.0 / self.ast.target))
            self.capacity = full + batch * between
            self.buffer_images = torch.empty((self.capacity + batch, *images.shape[1:]), dtype=images.dtype,
                                             device=self.device)
            self.buffer_labels = torch.empty(self.capacity + batch, dtype=labels.dtype, device=self.device)
        slots = self.fill + torch.cumsum(mask.long(), 0) - 1
        slots = torch.where(mask, slots, self.capacity + torch.arange(batch, device=self.device))
        self.buffer_images.index_copy_(0, slots, images)
        self.buffer_labels.index_copy_(0, slots, labels)
        self.fill = self.fill + count
        self.fill_upper += batch
        self.fill_expected += self.ast.target * batch
        if self.fill_expected >= full or self.fill_upper + batch > self.capacity:
            self._drain(flush=False)

    def _drain(self, flush: bool) -> None:
        """Train on every full batch in the buffer (and on the rest with `flush`); keep the remainder."""
        full = self.config.batch_size
        fill = int(self.fill)  # host sync: about once per training step
        self.host_syncs += 1
        start = 0
        if self.world > 1:
            start = self._drain_together(fill, full, flush)
        while self.world == 1 and (fill - start >= full or (flush and fill - start > 0)):
            end = min(fill, start + full)
            images = self.buffer_images[start:end]
            if self.config.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            self.optimize(images, self.buffer_labels[start:end])
            start = end
        remaining = fill - start
        if start and remaining:
            self.buffer_images[:remaining] = self.buffer_images[start:fill].clone()
            self.buffer_labels[:remaining] = self.buffer_labels[start:fill].clone()
        self.fill = torch.tensor(remaining, dtype=torch.long, device=self.device)
        self.fill_upper = self.fill_expected = remaining
        if self.world > 1:  # the host-side counters decide when to drain: the same on every rank
            self.fill_upper = self.fill_expected = self.largest_remaining

    def _drain_together(self, fill: int, full: int, flush: bool) -> int:
        """DDP: every rank takes as many training steps, from the fill levels of all ranks; returns how much
        of this rank's buffer was trained on."""
        fills = distributed.gather(fill)
        steps = math.ceil(max(fills) / full) if flush else min(fills) // full
        self.largest_remaining = max(f - min(f, steps * full) for f in fills)
        for j in range(steps):
            sizes = [max(0, min(f, (j + 1) * full) - j * full) for f in fills]
            start, end = j * full, j * full + sizes[distributed.rank()]
            if end > start:
                images, labels, weight, count = (self.buffer_images[start:end], self.buffer_labels[start:end],
                                                 (end - start) * self.world / sum(sizes), True)
            else:  # nothing left here: a zero-weighted sample keeps this rank in the step's all-reduce
                images, labels, weight, count = self.buffer_images[:1], self.buffer_labels[:1], 0.0, False
            if self.config.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            self.optimize(images, labels, weight=weight, count=count)
        return min(fill, steps * full)

    # ---- per-epoch and per-run accounting ---------------------------------------------------------------
    def running(self) -> dict:
        trained = max(1, self.samples_trained)
        return {"loss": f"{float(self.loss_sum) / trained:.3f}", "acc": f"{float(self.correct) / trained:.3f}",
                "act": f"{int(self.active) / max(1, self.scored):.3f}", "theta": f"{float(self.controller.theta):.3f}"}

    def end_epoch(self) -> dict:
        if self.ast.pack and not self.dense_epoch and self.buffer_images is not None:
            self._drain(flush=True)  # an epoch trains on everything it selected
        row = super().end_epoch()  # train loss, accuracy and samples_trained over all ranks
        scored, active, trained = self.scored, int(self.active), row["samples_trained"]
        per_class = self.selected_per_class
        if self.world > 1:
            scored, active = (int(v) for v in distributed.all_reduce_sum(
                torch.tensor([scored, active], dtype=torch.long, device=self.device)).tolist())
            fallbacks = int(distributed.all_reduce_sum(self.fallbacks.clone()))
            per_class = distributed.all_reduce_sum(per_class.clone())
        else:
            fallbacks = int(self.fallbacks)
        scoring_pass = not self.dense_epoch and self.scoring_pass
        values = torch.stack(self.trace_rows).float().cpu() if self.trace_rows else torch.zeros(0, 4)
        phase = "dense" if self.dense_epoch else "ast"
        self.trace.append({"epoch": self.epoch + 1, "phase": phase, "values": values})
        row.update(account(scored, active, trained, scoring_pass, self.ast.energy_active, self.ast.energy_skipped,
                           self.flops_per_sample))
        row.update(
            ast_phase=phase,
            threshold_mean=float(values[:, 0].mean()) if len(values) else float(self.controller.theta),
            threshold_final=float(self.controller.theta),
            activation_ema=float(self.controller.ema),
            integral=float(self.controller.integral),
            fallback_batches=fallbacks,
            host_syncs=self.batches_seen if not self.ast.pack else self.host_syncs,
            selected_per_class=[int(n) for n in per_class.tolist()],   # one read per epoch
        )
        if self.energy is not None:
            row["energy_budget"] = self.energy.energy
        return row

    @property
    def scoring_pass(self) -> bool:
        """Whether selection pays for a scoring forward pass (every selection but the random subset)."""
        return self.ast.selection != "random"

    def summary(self, history: list[dict]) -> dict:
        ast_rows = [r for r in history if r.get("ast_phase") == "ast"]
        kp, ki = resolved_gains(self.ast)
        out = super().summary(history)
        out.update({"ast_target": self.ast.target, "ast_gains": self.ast.gains, "ast_kp": kp, "ast_ki": ki,
                    "ast_selection": self.ast.selection, "ast_gate": self.ast.gate, "ast_pack": self.ast.pack,
                    "ast_epochs": len(ast_rows), "dense_epochs_done": len(history) - len(ast_rows)})
        if self.world > 1:  # the same theta on every rank: compare the per-batch traces across ranks
            mine = distributed.digest({"trace": [part["values"].tolist() for part in self.trace]})
            out["theta_trace_ranks_equal"] = len(set(distributed.gather(mine))) == 1
        if self.flops_per_sample is not None:
            out.update(flops_per_sample_forward=self.flops_per_sample["forward"],
                       flops_per_sample_train=self.flops_per_sample["train"])
        if ast_rows:
            total = account(sum(r["scored_samples"] for r in ast_rows), sum(r["active_samples"] for r in ast_rows),
                            sum(r["samples_trained"] for r in ast_rows), self.scoring_pass,
                            self.ast.energy_active, self.ast.energy_skipped, self.flops_per_sample)
            out.update(total)
            out["threshold_mean"] = sum(r["threshold_mean"] for r in ast_rows) / len(ast_rows)
            out["threshold_final"] = ast_rows[-1]["threshold_final"]
            out["fallback_batches"] = sum(r["fallback_batches"] for r in ast_rows)
            out["ast_train_seconds"] = sum(r["epoch_seconds"] for r in ast_rows)
            # The whole run, dense epochs included, against dense training of as many epochs.
            scored_all = max(1, sum(r["scored_samples"] for r in history))
            for key in ("compute_vs_dense_model", "compute_vs_dense_flops"):
                if all(r.get(key) is not None for r in history):
                    out[f"run_{key}"] = sum(r[key] * r["scored_samples"] for r in history) / scored_all
        return out

    # ---- checkpoint state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(controller=self.controller.state_dict(), ast_started=self.ast_started,
                     generator=self.generator.get_state(), trace=self.trace, flops_per_sample=self.flops_per_sample,
                     recorded_scores=self.recorded_scores)
        if self.energy is not None:
            state["energy_budget"] = self.energy.state_dict()
        if self.loss_history is not None:
            state["loss_history"] = self.loss_history.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "controller" in state:
            self.controller.load_state_dict(state["controller"])
            self.ast_started = state["ast_started"]
            self.generator.set_state(state["generator"])
            self.trace = list(state.get("trace", []))
            self.flops_per_sample = state.get("flops_per_sample")
            self.recorded_scores = list(state.get("recorded_scores", []))
            if self.energy is not None:
                self.energy.load_state_dict(state["energy_budget"])
            if self.loss_history is not None:
                self.loss_history.load_state_dict(state["loss_history"])

    # ---- per-batch trace: RunResult.extra["ast_trace"] and ast_trace.csv in the run folder ----------------
    def trace_table(self) -> dict[str, list]:
        table: dict[str, list] = {"epoch": [], "batch": [], "phase": [], **{c: [] for c in TRACE_COLUMNS}}
        for part in self.trace:
            for i, row in enumerate(part["values"].tolist()):
                table["epoch"].append(part["epoch"])
                table["batch"].append(i)
                table["phase"].append(part["phase"])
                for column, value in zip(TRACE_COLUMNS, row):
                    table[column].append(value)
        return table

    def artifacts(self, out_dir) -> dict:
        """The per-batch trace (ast_trace.csv) and, with `ast.record_scores`, the recorded score stream
        (ast_scores.pt: a float16 [batches, batch size] tensor that `sparse.sim` can replay)."""
        table = self.trace_table()
        extra = {"ast_trace": table}
        if self.recorded_scores:
            extra["ast_scores"] = torch.stack(self.recorded_scores)
        if out_dir is not None:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(table.keys())
            writer.writerows(zip(*table.values()))
            atomic_write_text(Path(out_dir) / "ast_trace.csv", buffer.getvalue())
            if "ast_scores" in extra:
                atomic_write(Path(out_dir) / "ast_scores.pt", lambda handle: torch.save(extra["ast_scores"], handle))
        return extra


def account(scored: int, active: int, trained: int, scoring_pass: bool, energy_active: float = 1.0,
            energy_skipped: float = 0.01, flops_per_sample: dict | None = None) -> dict:
    """Activation rate and compute relative to dense training of the same samples, three ways:

    - `energy_savings_seed_formula`: the AST paper's formula (1 per active sample, 0.01 per skipped one),
      which leaves out the scoring pass;
    - `compute_vs_dense_model`: forward-pass equivalents, 1 per scored sample for the scoring forward and 3
      per trained sample for a training step;
    - `compute_vs_dense_flops`: the same with the model's FLOPs per sample as counted by
      `torch.utils.flop_counter` (None until they have been counted; exact without a scoring pass);
    - `training_flops`: those FLOPs themselves, scoring pass included (None until counted).
    """
    scored = max(1, scored)
    skipped = scored - active
    energy = active * energy_active + skipped * energy_skipped
    modelled = (FORWARD_COST * scored if scoring_pass else 0.0) + TRAIN_COST * trained
    if flops_per_sample is not None:
        counted = (flops_per_sample["forward"] * scored if scoring_pass else 0.0) + flops_per_sample["train"] * trained
        flops_ratio = counted / (flops_per_sample["train"] * scored)
    else:
        counted, flops_ratio = None, None if scoring_pass else trained / scored
    return {"activation_rate": active / scored,
            "energy_savings_seed_formula": 1.0 - energy / (scored * energy_active),
            "compute_vs_dense_model": modelled / (TRAIN_COST * scored),
            "compute_vs_dense_flops": flops_ratio, "training_flops": counted,
            "scored_samples": scored, "active_samples": active}


def count_flops_per_sample(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, criterion,
                           autocast) -> dict:
    """FLOPs per sample of the scoring forward (no gradient) and of a training step (forward and backward),
    counted by `torch.utils.flop_counter.FlopCounterMode` on a copy of the model, so that the run's weights,
    gradients, BatchNorm statistics and random streams are left as they were."""
    from torch.utils.flop_counter import FlopCounterMode

    replica = copy.deepcopy(getattr(model, "_orig_mod", model))  # torch.compile keeps the module there
    count = min(FLOP_COUNT_SAMPLES, labels.shape[0])
    x, y = images[:count], labels[:count]
    cuda = [images.device] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        replica.train()
        with FlopCounterMode(display=False) as forward, torch.no_grad(), autocast():
            replica(x)
        with FlopCounterMode(display=False) as train:
            with autocast():
                logits = replica(x)
            criterion(logits.float(), y).backward()
    return {"forward": forward.get_total_flops() / count, "train": train.get_total_flops() / count}
