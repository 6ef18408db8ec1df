"""Logit adjustment on a finished multi-corpus run, with its class prior counted two ways, on the run's dev splits.

    PYTHONPATH=. python bench/logit_prior.py --run runs/text-candidate [--out runs/logit_prior.json]
    PYTHONPATH=. python bench/logit_prior.py --run fusion/assets/default --branch text --applied-tau 0.5
    PYTHONPATH=. python bench/logit_prior.py --run runs/default-text-mix --taus 0,0.2,0.5,0.85

"every row": each label's share of the weighted target mass over all training rows, as if every corpus could
give every label (the count used before); "label masks": `train.finish.training_prior`, where a corpus only
speaks about the labels its annotators had. Both use the same row weights (source weight x epoch share). For
each, tau is chosen on the run's dev rows as training chooses it (mean of the corpora's macro-F1), and each
corpus's dev macro-F1 at that tau is printed; the run's own shift is taken off its logits first. A built
folder (no training_args.json) is read through its training record (`--branch`), and a run that did not record
its prior applied the every-row count (with `--applied-tau` where its metrics do not say the tau either).
`--taus` also prints each corpus's dev macro-F1 at the given taus (label-mask prior).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench.common import print_table, write_json  # noqa: E402
from fusion.hub import load_model_folder  # noqa: E402
from fusion.preprocess import Preprocessor  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.data import load_sources, split_dataset  # noqa: E402
from train.evaluate import by_source, collect_logits, mean_source_macro_f1  # noqa: E402
from train.finish import masked_prior, training_prior  # noqa: E402
from train.loader import label_order, make_loader, source_shares  # noqa: E402
from train.metrics import choose_logit_adjustment  # noqa: E402
from train.report import source_name  # noqa: E402
from train.sources import fixed_shares  # noqa: E402


def every_row_prior(train, config: TrainConfig) -> torch.Tensor:
    """The same weighted targets, every label counted over every row."""
    names = train["source"]
    counts = {n: names.count(n) for n in set(names)}
    shares = source_shares(names, config.source_temperature, fixed_shares(config.data))
    weight = torch.tensor([shares[n] / counts[n] * w for n, w in zip(names, train["weight"], strict=True)])
    mass = torch.tensor(train["target"], dtype=torch.float64) * weight[:, None].double()
    return masked_prior(mass, torch.ones_like(mass, dtype=torch.bool))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `python -m train` output folder")
    parser.add_argument("--branch", default="text", help="which run of a built folder's record (text or face)")
    parser.add_argument("--applied-tau", type=float, default=None, help="the tau the run applied, if unrecorded")
    parser.add_argument("--taus", default="", help="comma-separated taus to print every corpus's score at")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if (args.run / "training_args.json").is_file():
        recorded = json.loads((args.run / "training_args.json").read_text())
    else:  # a built folder: the last run of the branch in its record
        recorded = [r for r in json.loads((args.run / "training_runs.json").read_text())["runs"]
                    if r.get("branch") == args.branch][-1]  # fmt: skip
    config = TrainConfig(**{f.name: recorded[f.name] for f in dataclasses.fields(TrainConfig) if f.name in recorded})
    by_split, report = load_sources(config.data, cache_dir=args.run / "teacher_targets")
    splits = split_dataset(by_split, config.seed, config.validation_share, config.test_share)
    model, tokenizer = load_model_folder(args.run)
    loader = make_loader(splits["validation"], Preprocessor(model.preprocess_cfg, tokenizer, is_train=False), 64,
                         labels=model.labels)  # fmt: skip
    collected = collect_logits(model, loader, desc="dev")
    applied = json.loads((args.run / "metrics.json").read_text()).get("calibration", {}).get("logit_adjustment", {})
    order = label_order(model.labels)
    if "prior" in applied:
        used = torch.tensor([applied["prior"][name] for name in model.labels], dtype=torch.float64)
    else:  # runs from before the prior was recorded applied the every-row count
        used = every_row_prior(splits["train"], config)[order].double()
    tau = args.applied_tau if args.applied_tau is not None else applied["tau"]
    collected.logits = collected.logits.double() + tau * torch.log(used)  # the model before its shift
    ids = loader.dataset.source_ids

    def per_corpus(logits: torch.Tensor) -> dict[str, dict]:
        return by_source(dataclasses.replace(collected, logits=logits), model.labels, ids, report.labels)

    def score(adjusted: torch.Tensor, rows: torch.Tensor) -> float:
        part = dataclasses.replace(collected.select(rows), logits=adjusted)
        return mean_source_macro_f1(by_source(part, model.labels, ids, report.labels))

    result = {}
    for name, prior in (("every row", every_row_prior(splits["train"], config)),
                        ("label masks", training_prior(splits["train"], config))):  # fmt: skip
        prior = prior[order]
        tau, chosen = choose_logit_adjustment(collected.logits, collected.labels, prior, score=score)
        corpora = per_corpus(collected.logits - tau * torch.log(prior))
        result[name] = {"tau": tau, **chosen, "prior": dict(zip(model.labels, prior.tolist(), strict=True)),
                        "by_source": {source_name(ref): r["macro_f1"] for ref, r in corpora.items()}}  # fmt: skip
    print_table([{"prior counted over": name, "tau": r["tau"], "mean of corpora's macro-F1": r["score_at_tau"],
                  **r["prior"]} for name, r in result.items()], ["prior counted over", "tau",
                 "mean of corpora's macro-F1", *model.labels])  # fmt: skip
    print_table([{"dev corpus": corpus, **{name: r["by_source"][corpus] for name, r in result.items()}}
                 for corpus in result["label masks"]["by_source"]], ["dev corpus", *result])  # fmt: skip
    prior = training_prior(splits["train"], config)[order]
    at = {
        tau: per_corpus(collected.logits - tau * torch.log(prior))
        for tau in map(float, filter(None, args.taus.split(",")))
    }
    if at:
        result["at tau"] = {
            tau: {source_name(ref): r["macro_f1"] for ref, r in corpora.items()} for tau, corpora in at.items()
        }
        print_table([{"tau": tau, "mean": sum(r.values()) / len(r), **r} for tau, r in result["at tau"].items()],
                    ["tau", "mean", *next(iter(result["at tau"].values()))])  # fmt: skip
    write_json(args.out, {"run": str(args.run), **result})
    return result


if __name__ == "__main__":
    main()
