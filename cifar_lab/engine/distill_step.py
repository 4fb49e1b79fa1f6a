"""Knowledge distillation as a mode of the one training loop: the student learns from a trained teacher's
softened outputs as well as from the labels (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a
Neural Network").

The trainer builds a `DistillStep` when `config.distill.enabled`. Per batch, the teacher (a checkpoint loaded
with `checkpoint.load_model`: eval mode, frozen, no gradient) runs on exactly the augmented batch the student
sees; the student then takes the dense step with the distillation loss in place of cross-entropy:

    loss = alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * CE(student logits, labels)

with p = softmax(logits / T). The KL divergence is taken with the teacher's distribution as the target
(sum over classes of p_t * log(p_t / p_s), averaged over the batch): it differs from Hinton's cross-entropy
with soft targets only by the teacher's entropy, a constant, so the gradients are the same. The T^2 factor
keeps the soft term's gradients at the same scale as the hard term's when T changes (the soft gradients
shrink as 1/T^2). The label term keeps `label_smoothing`.

Compute: the teacher's forward pass is part of every training step. The forward FLOPs per sample of teacher
and student are counted once with `torch.utils.flop_counter.FlopCounterMode`; a student training step counts
as three forwards. `summary.json` reports them and `compute_vs_student` = (student train + teacher forward) /
student train, the run's compute relative to training the student alone.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UsageError
from . import checkpoint
from .sparse_step import FLOP_COUNT_SAMPLES, TRAIN_COST, count_flops_per_sample
from .steps import DenseStep


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float, hard_loss=None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]:
    """Hinton et al.'s loss: alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels).

    Returns (total, soft, hard), where soft is the KL term before the alpha * T^2 weight and hard the label
    loss (`hard_loss`, default plain cross-entropy). All in fp32.
    """
    student, teacher = student_logits.float(), teacher_logits.float()
    log_p_student = F.log_softmax(student / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=1)
    # kl_div(input=log q, target=log p, log_target=True) = sum p * (log p - log q): KL(teacher || student).
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    hard = (hard_loss or F.cross_entropy)(student, labels)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * hard, soft, hard


def load_teacher(config, device: torch.device) -> tuple[nn.Module, dict]:
    """The teacher of `config.distill.teacher` in eval mode with frozen weights, and a record of it.

    A missing or unreadable file, or a teacher whose class count or input differs from the student's, is a
    one-line UsageError.
    """
    path = Path(config.distill.teacher)
    if not path.is_file():
        raise UsageError(f"distill.teacher={path}: no such file; point it at the best.pt of a finished run")
    try:
        state = checkpoint.load(path)
    except UsageError as exc:
        raise UsageError(f"distill.teacher: {exc}") from None
    from ..config import from_dict

    try:
        teacher_config = from_dict(state["config"])
    except UsageError as exc:
        raise UsageError(f"distill.teacher={path}: its config cannot be read ({exc})") from None
    if teacher_config.num_classes != config.num_classes:
        raise UsageError(f"distill.teacher={path} predicts {teacher_config.num_classes} classes but the student "
                         f"trains on {config.num_classes} ({config.dataset}); use a teacher trained on the same "
                         f"dataset")
    record = checkpoint.input_record(state)
    if record["resolution"] != config.input_size or record.get("eval_resize", 0):
        raise UsageError(f"distill.teacher={path} takes {record['resolution']} px inputs but the student's batches "
                         f"are {config.input_size} px; use a teacher trained at input_size={config.input_size}")
    try:
        model = checkpoint.load_model(state, device)
    except UsageError as exc:
        raise UsageError(f"distill.teacher={path}: {exc}") from None
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    history = state.get("history") or []
    info = {"path": str(path), "absolute_path": str(path.resolve()), "model": teacher_config.model,
            "dataset": teacher_config.dataset, "preset": teacher_config.preset, "epoch": state.get("epoch", -1) + 1,
            "best_acc": state.get("best_acc"),
            "test_acc": history[-1].get("test_acc") if history else None,
            "params": sum(p.numel() for p in model.parameters()),
            "mean": list(record["mean"]), "std": list(record["std"])}
    return model, info


class DistillStep(DenseStep):
    """The dense step with the teacher's no-grad forward on the same batch and Hinton's loss."""

    def __init__(self, model, optimizer, scaler, config, device, precision, scheduler=None, batches_per_epoch=None):
        super().__init__(model, optimizer, scaler, config, device, precision, scheduler, batches_per_epoch)
        self.distill = config.distill
        self.teacher, self.teacher_info = load_teacher(config, device)
        if config.channels_last:
            self.teacher = self.teacher.to(memory_format=torch.channels_last)
        self.label_loss = self.criterion            # cross-entropy with the run's label smoothing
        # The dense step calls `self.criterion(logits, labels)`; the distillation loss takes its place, with
        # the teacher's logits of the same batch (set in `optimize` just before).
        self.criterion = self._loss
        self.teacher_logits = None
        self.renormalize = None                     # (scale, shift): student-normalised -> teacher-normalised
        self.flops: dict | None = None              # per sample: student train step, teacher forward

    def set_input_statistics(self, mean, std) -> None:
        """The student's normalisation; where the teacher's differs (another subset or seed), the batch is
        mapped to the teacher's: x_t = (x_s * std_s + mean_s - mean_t) / std_t."""
        t_mean, t_std = self.teacher_info["mean"], self.teacher_info["std"]
        if [round(v, 6) for v in mean] == [round(v, 6) for v in t_mean] and \
                [round(v, 6) for v in std] == [round(v, 6) for v in t_std]:
            self.renormalize = None
            return
        s_mean, s_std, t_mean, t_std = (torch.tensor(v, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
                                        for v in (mean, std, t_mean, t_std))
        self.renormalize = (s_std / t_std, (s_mean - t_mean) / t_std)

    def teacher_forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.renormalize is not None:
            scale, shift = self.renormalize
            images = images * scale + shift
        with torch.no_grad(), self.autocast():
            return self.teacher(images)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total, soft, hard = distillation_loss(logits, self.teacher_logits, labels, self.distill.temperature,
                                              self.distill.alpha, self.label_loss)
        self.soft_sum += soft.detach() * labels.shape[0]
        self.hard_sum += hard.detach() * labels.shape[0]
        return total

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        self.soft_sum = torch.zeros((), device=self.device)
        self.hard_sum = torch.zeros((), device=self.device)

    def optimize(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.flops is None:
            self.flops = self._count_flops(images, labels)
        self.teacher_logits = self.teacher_forward(images)
        try:
            super().optimize(images, labels)
        finally:
            self.teacher_logits = None

    def _count_flops(self, images, labels) -> dict:
        """Forward FLOPs per sample of the student and of the teacher, counted by `FlopCounterMode` on a few
        samples. A student training step is taken as three forwards (`TRAIN_COST`, the forward-equivalent
        model of the AST accounting) rather than counted: torch's counter leaves out the groups in the
        weight-gradient term of a grouped convolution, which overstates the backward of depthwise
        convolutions (MobileNet's) by about their channel count; forward counts are exact."""
        from torch.utils.flop_counter import FlopCounterMode

        model = getattr(self.model, "module", self.model)  # DistributedDataParallel keeps the model there
        student = count_flops_per_sample(model, images, labels, self.label_loss, self.autocast)
        count = min(FLOP_COUNT_SAMPLES, labels.shape[0])
        with FlopCounterMode(display=False) as teacher, torch.no_grad(), self.autocast():
            self.teacher(images[:count])  # eval mode, frozen: counting changes nothing
        return {"student_forward": student["forward"], "student_train": TRAIN_COST * student["forward"],
                "teacher_forward": teacher.get_total_flops() / count}

    def end_epoch(self) -> dict:
        row = super().end_epoch()
        seen = max(1, self.samples_trained)
        row.update(train_soft_loss=float(self.soft_sum) / seen, train_label_loss=float(self.hard_sum) / seen)
        return row

    def summary(self, history: list[dict]) -> dict:
        out = super().summary(history)
        info = {k: v for k, v in self.teacher_info.items() if k not in ("mean", "std")}
        out["distill"] = {"teacher": info, "temperature": self.distill.temperature, "alpha": self.distill.alpha,
                          "loss": "alpha*T^2*KL(p_teacher||p_student) + (1-alpha)*CE(student, labels)"}
        if self.flops is not None:
            student, teacher = self.flops["student_train"], self.flops["teacher_forward"]
            out.update(student_flops_per_sample_forward=self.flops["student_forward"],
                       student_flops_per_sample_train=student, teacher_flops_per_sample=teacher,
                       compute_vs_student=(student + teacher) / student)
        return out

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["flops"] = self.flops
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.flops = state.get("flops", self.flops)
