"""What each modality says: fused, image-only and text-only probabilities as bars, readable at a glance."""

from __future__ import annotations

import html
from typing import Any

COLOURS = {"fused": "#6d28d9", "image": "#0891b2", "text": "#d97706"}
# One colour per emotion (the video timeline's lines and its legend), distinct for common colour blindness.
EMOTION_COLOURS = {"angry": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "happy": "#ff7f0e",
                   "neutral": "#7f7f7f", "sad": "#1f77b4", "surprise": "#e377c2"}  # fmt: skip


def emotion_legend(labels: list[str]) -> str:
    """The timeline's legend as HTML: a swatch and the name of each emotion, wrapping on narrow screens."""
    items = "".join(
        f"<span class='emotion-key' style='display:inline-flex;align-items:center;gap:4px;margin:2px 10px 2px 0'>"
        f"<span style='width:14px;height:4px;background:{EMOTION_COLOURS.get(name, '#444')};display:inline-block'>"
        f"</span>{html.escape(name)}</span>"
        for name in labels
    )
    return f"<div class='emotion-legend' style='display:flex;flex-wrap:wrap'>{items}</div>"


def modality_chart(details: dict[str, Any] | None) -> str:
    """HTML bars per emotion for the fused result and each modality present in `details`."""
    if not details or "probabilities" not in details:
        return "<p style='opacity:.6'>Predict to see what each modality says.</p>"
    series = {"fused": details["probabilities"]}
    if details.get("image_probabilities"):
        series["image"] = details["image_probabilities"]
    if details.get("text_probabilities"):
        series["text"] = details["text_probabilities"]
    legend = " ".join(f"<span style='color:{COLOURS[name]};font-weight:600'>■ {name}</span>" for name in series)
    rows = []
    for emotion in details["probabilities"]:
        bars = "".join(
            f"<div title='{name}: {100 * probs[emotion]:.1f}%' style='height:8px;margin:1px 0;"
            f"width:{max(1.0, 100 * probs[emotion]):.1f}%;background:{COLOURS[name]}'></div>"
            for name, probs in series.items()
        )
        cells = " / ".join(f"{100 * probs[emotion]:.0f}%" for probs in series.values())
        rows.append(
            f"<tr><td style='padding-right:8px'>{html.escape(emotion)}</td>"
            f"<td style='width:60%'>{bars}</td><td style='padding-left:8px;font-size:12px'>{cells}</td></tr>"
        )
    return f"<div class='modality-chart'>{legend}<table style='width:100%'>{''.join(rows)}</table></div>"
