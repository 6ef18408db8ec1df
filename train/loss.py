"""The training objective: cross-entropy against each row's target distribution, over the labels its source uses.

A row's logits for labels outside its source's label set are masked out of its softmax, so the row
gives those labels no gradient at all: a corpus without "neutral" never pushes "neutral" down (it
says nothing about it). One-hot targets with every label in use are the ordinary cross-entropy.
"""

from __future__ import annotations

import torch

AUX_LOSS_WEIGHT = 0.5  # the per-modality heads the app shows are trained beside the fused head
MASKED = -1e4  # a logit no softmax gives weight to (finite, so bf16/fp16 stay finite too)


def class_weight_tensor(targets: torch.Tensor) -> torch.Tensor:
    """Inverse class frequency from the training targets (N x L distributions; soft counts)."""
    counts = targets.double().sum(0)
    return (counts.sum() / (len(counts) * counts.clamp(min=1))).float()


def soft_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    smoothing: float = 0.0,
    class_weight: torch.Tensor | None = None,
    row_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over rows of -sum_k target_k log softmax_k, each softmax over the row's own labels (`mask`).

    `smoothing` moves that share of each target evenly onto the row's labels; `class_weight` weights a row
    by its target's classes and `row_weight` by its source, both as a weighted mean (like `F.cross_entropy`'s
    `weight`).
    """
    mask = mask.bool()
    log_p = torch.log_softmax(logits.float().masked_fill(~mask, MASKED), dim=-1)
    if smoothing:
        targets = (1 - smoothing) * targets + smoothing * mask / mask.sum(1, keepdim=True).clamp(min=1)
    per_row = -(targets * log_p.masked_fill(~mask, 0.0)).sum(1)
    weight = torch.ones_like(per_row)
    if class_weight is not None:
        weight = weight * (targets * class_weight).sum(1)
    if row_weight is not None:
        weight = weight * row_weight
    return (per_row * weight).sum() / weight.sum().clamp(min=1e-12)


def loss_fn(out, batch: dict, class_weight: torch.Tensor | None = None, smoothing: float = 0.0) -> torch.Tensor:
    """The fused head's loss, plus each branch head's on the rows where its modality is present."""
    targets, mask, weight = batch["targets"], batch["label_mask"], batch.get("weight")
    loss = soft_cross_entropy(out.logits, targets, mask, smoothing, class_weight, weight)
    for logits, present in ((out.text_logits, out.text_present), (out.image_logits, out.image_present)):
        if present.any():
            rows = present.nonzero().squeeze(1)
            aux = soft_cross_entropy(logits[rows], targets[rows], mask[rows], smoothing, class_weight,
                                     weight[rows] if weight is not None else None)  # fmt: skip
            loss = loss + AUX_LOSS_WEIGHT * aux
    return loss
