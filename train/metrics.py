"""Classification metrics and calibration: accuracy, macro-F1, per-class P/R/F1, confusion, ECE, temperature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Rows are true labels, columns predictions."""
    index = labels.long() * num_labels + preds.long()
    return torch.bincount(index, minlength=num_labels**2).reshape(num_labels, num_labels)


def classification_metrics(
    logits: torch.Tensor, labels: torch.Tensor, names: list[str], classes: list[str] | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, mean per-class recall and per-class scores of the argmax over all labels.

    Macro-F1 averages over `classes` (a corpus's own labels: a label it never uses has no F1 of its own,
    though predicting it still costs the other classes' recall), else over the classes present in the
    labels or predictions.
    """
    preds = logits.argmax(-1)
    cm = confusion_matrix(labels, preds, len(names)).double()
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    if classes is not None:
        active = torch.tensor([name in classes for name in names])
    else:
        active = (cm.sum(0) + cm.sum(1)) > 0  # a class absent from both says nothing about the model
    has_rows = active & (cm.sum(1) > 0)
    return {
        "n": int(labels.numel()),
        "accuracy": float((preds == labels).double().mean()) if labels.numel() else 0.0,
        # The accuracy a class-balanced version of the data would give: a model that never says "fear" scores
        # well on a skewed set, not on this.
        "mean_recall": float(recall[has_rows].mean()) if has_rows.any() else 0.0,
        "macro_f1": float(f1[active].mean()) if active.any() else 0.0,
        "weighted_f1": float((f1 * cm.sum(1)).sum() / cm.sum().clamp(min=1)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(cm[i].sum()),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.long().tolist(),
    }


def expected_calibration_error(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, bins: int = 15
) -> float:
    """ECE with equal-width confidence bins."""
    if not labels.numel():
        return 0.0
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    confidence, preds = probs.max(-1)
    correct = (preds == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    ece = torch.zeros((), dtype=torch.float64)
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.double().mean() * (confidence[in_bin].mean() - correct[in_bin].mean()).abs()
    return float(ece)


def fit_temperature(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, steps: int = 200
) -> float:
    """The temperature minimising validation NLL (optimised in log space so it stays positive).

    `labels` are class ids or target distributions (N x L, e.g. crowd votes); `mask` (N x L) limits each
    row's softmax to the labels its source uses, as in training.
    """
    if not labels.numel():
        return 1.0
    logits = logits.detach().double().clone()  # may be inference tensors
    labels = labels.detach().clone().double() if labels.is_floating_point() else labels.detach().clone().long()
    if mask is not None:
        logits = logits.masked_fill(~mask.bool(), -1e4)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def choose_logit_adjustment(
    logits: torch.Tensor,
    labels: torch.Tensor,
    prior: torch.Tensor,
    grid: tuple[float, ...] = tuple(i / 20 for i in range(41)),
    score: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Post-hoc logit adjustment for class skew (Menon et al., ICLR 2021): logits - tau * log(prior).

    tau = 0 keeps the model as trained; tau = 1 is the balanced-error optimum in theory. One scalar is
    chosen on the given (validation) rows by macro-F1 (or `score(adjusted logits, row indices)`). The report also holds a 2-fold cross-fitted
    macro-F1 (tau chosen on one half, scored on the other), which shows how much that choice flatters
    the score it was chosen on.
    """
    log_prior = torch.log(prior.double().clamp(min=1e-12))
    names = [str(i) for i in range(logits.shape[1])]

    def macro_f1(rows: torch.Tensor, tau: float) -> float:
        adjusted = logits[rows].double() - tau * log_prior
        if score is not None:  # e.g. the mean of each source's macro-F1
            return score(adjusted, rows)
        return classification_metrics(adjusted, labels[rows], names)["macro_f1"]

    every = torch.arange(len(labels))
    scores = {tau: macro_f1(every, tau) for tau in grid}
    best = max(grid, key=lambda t: (scores[t], -t))
    halves = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0)).chunk(2)
    crossed = []
    for fit, held in (halves, halves[::-1]):
        tau = max(grid, key=lambda t: (macro_f1(fit, t), -t))
        crossed.append(macro_f1(held, tau))
    report = {
        "chosen_by": "macro-F1" if score is None else getattr(score, "__doc__", None) or "a given score",
        "score_at_tau_0": scores[0.0],
        "score_at_tau": scores[best],
        "cross_fitted_score": sum(crossed) / 2,
    }
    return best, report
