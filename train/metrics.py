"""Classification metrics and calibration: accuracy, macro-F1, per-class P/R/F1, confusion, ECE, temperature."""

from __future__ import annotations

from typing import Any

import torch


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Rows are true labels, columns predictions."""
    index = labels.long() * num_labels + preds.long()
    return torch.bincount(index, minlength=num_labels**2).reshape(num_labels, num_labels)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over classes present in the labels or predictions) and per-class scores."""
    preds = logits.argmax(-1)
    cm = confusion_matrix(labels, preds, len(names)).double()
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    active = (cm.sum(0) + cm.sum(1)) > 0  # a class absent from both says nothing about the model
    return {
        "n": int(labels.numel()),
        "accuracy": float((preds == labels).double().mean()) if labels.numel() else 0.0,
        "macro_f1": float(f1[active].mean()) if active.any() else 0.0,
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


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 200) -> float:
    """The temperature minimising validation NLL (optimised in log space so it stays positive)."""
    if not labels.numel():
        return 1.0
    logits, labels = logits.detach().double().clone(), labels.long().clone()  # may be inference tensors
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))
