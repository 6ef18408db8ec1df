"""What a training run leaves for people: metrics.json, a confusion-matrix PNG and the model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

CARD_TEMPLATE = Path(__file__).with_name("model_card.md")


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Pretty, sorted JSON (the one writer for run outputs, evaluations and benchmarks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain-text table, one row per dict (floats with 3 significant decimals)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def confusion_png(matrix: list[list[int]], names: list[str], path: Path, title: str = "Confusion matrix") -> Path:
    """Rows = true label, columns = prediction; cells shaded by row share and labelled with counts."""
    cell, left, top = 64, 96, 72
    size = (left + cell * len(names) + 16, top + cell * len(names) + 16)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    draw.text((left, 8), title, fill="black", font=font)
    draw.text((left, 28), "predicted ->", fill="gray", font=font)
    for j, name in enumerate(names):
        draw.text((left + j * cell + 4, top - 20), name[:8], fill="black", font=font)
    for i, row in enumerate(matrix):
        total = max(sum(row), 1)
        draw.text((8, top + i * cell + cell // 2 - 7), names[i][:10], fill="black", font=font)
        for j, count in enumerate(row):
            share = count / total
            shade = int(255 - 200 * share)
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell - 1, top + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="white")
            draw.text(
                (box[0] + 6, box[1] + cell // 2 - 7), str(count), fill="white" if share > 0.5 else "black", font=font
            )
    image.save(path)
    return path


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def metrics_table(metrics: dict[str, Any]) -> str:
    """Markdown table of the held-out ablation (both / image only / text only)."""
    rows = ["| input | accuracy | macro-F1 | n |", "|---|---|---|---|"]
    for name, result in metrics.get("test", {}).items():
        rows.append(f"| {name} | {_pct(result['accuracy'])} | {_pct(result['macro_f1'])} | {result['n']} |")
    return "\n".join(rows)


def write_model_card(
    folder: Path, metrics: dict[str, Any], training: dict[str, Any], repo_id: str | None = None
) -> Path:
    """README.md with Hub metadata (model-index from the held-out metrics, named by their split) and the report."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    held_out = metrics.get("held_out_split", "test")  # "validation" when the run kept no test split
    fused = metrics.get("test", {}).get("image+text") or next(iter(metrics.get("test", {}).values()), None)
    datasets = [d[len("hub:") :].split(":")[0].split("@")[0] for d in training.get("data", []) if d.startswith("hub:")]
    eval_results = []
    if fused:
        for metric, key in (("accuracy", "accuracy"), ("f1", "macro_f1")):
            eval_results.append(
                EvalResult(
                    task_type="image-classification",
                    task_name="Multimodal emotion recognition",
                    dataset_type=datasets[0] if datasets else "local",
                    dataset_name=", ".join(training.get("data", [])) or "local data",
                    dataset_split=held_out,
                    metric_type=metric,
                    metric_name="macro F1" if key == "macro_f1" else "accuracy",
                    metric_value=round(float(fused[key]), 4),
                )
            )
    data = ModelCardData(
        library_name="emotion-fusion",
        license="apache-2.0",
        pipeline_tag="image-classification",
        tags=["emotion-recognition", "multimodal", "text-classification", "facial-expression-recognition"],
        datasets=datasets or None,
        model_name=repo_id or folder.name,
        eval_results=eval_results or None,
        base_model=training.get("base_models") or None,
    )
    card = ModelCard.from_template(
        data,
        template_path=str(CARD_TEMPLATE),
        model_id=repo_id or folder.name,
        metrics_table=metrics_table(metrics),
        validation=metrics.get("validation", {}),
        calibration=metrics.get("calibration", {}),
        training=training,
        training_json=json.dumps(training, indent=2, sort_keys=True),
        has_confusion=(folder / "confusion_matrix.png").is_file(),
        held_out_split=held_out,
    )
    path = folder / "README.md"
    card.save(path)
    return path
