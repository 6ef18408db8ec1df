"""How the rule that chooses a routed text head's routes trades one corpus (Reddit) against the others: the
routes of a routed folder chosen again on its dev rows under other rules; each corpus's dev macro-F1 (MELD also
weighted-F1), with the router's shares as the folder serves them.

    PYTHONPATH=. python bench/route_choice.py [--routed runs/default-text/routed] [--target goemotions] \
        [--counts 2,3] [--out runs/route_choice.json]

Rules: `mean` is the served one (`train.route.choose_routes`: the mean of the corpora's dev macro-F1; its choice
should be the folder's own); `target xK` weighs the target corpus's score K times in that mean; `target, others
within 1 SE` takes the best target score among choices that keep every other corpus within one binomial
standard error of the first run's own dev score; `true corpus` serves each dev row its own corpus's route (a
perfect router), routes chosen by the mean rule. Also printed: the branched path alone (calibrated), and the
router's mean share of each route over the target corpus's dev rows.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench.common import print_table, write_json  # noqa: E402

Score = Callable[[torch.Tensor], dict[str, float]]


def main(argv: list[str] | None = None) -> dict:
    from fusion.hub import load_model_folder
    from fusion.preprocess import Preprocessor
    from train.branch import DevLogits, run_splits
    from train.evaluate import collect_logits
    from train.loader import make_loader
    from train.report import source_name
    from train.route import choose_routes, routes_of

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routed", type=Path, default=Path("runs/default-text/routed"), help="train.route's folder")
    parser.add_argument("--target", default="goemotions", help="the corpus the other rules favour")
    parser.add_argument("--counts", default="2,3", help="how many times the target counts in the mean")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    record = json.loads((args.routed / "route.json").read_text())
    first_dir, branched_dir = Path(record["first"]), Path(record["branched"])
    first, tokenizer = load_model_folder(first_dir)
    branched, _ = load_model_folder(branched_dir)
    routed, _ = load_model_folder(args.routed)
    routes = routes_of(first, branched, json.loads((first_dir / "metrics.json").read_text())["calibration"])
    splits, report, _ = run_splits(first_dir)
    preprocessor = Preprocessor(routed.preprocess_cfg, tokenizer, is_train=False)
    loader = make_loader(splits["validation"], preprocessor, 64, labels=first.labels)
    inputs: list[tuple] = []  # the routed head's (features, n-grams) of each batch
    handle = routed.text_head.register_forward_hook(lambda _module, head_args, _out: inputs.append(head_args))
    try:
        collected = collect_logits(routed, loader, desc="dev rows", output="text_logits")
    finally:
        handle.remove()
    with torch.no_grad():
        feats = torch.cat([batch[0].float() for batch in inputs])
        shares = torch.cat([routed.text_head.route_weights(*batch).float() for batch in inputs])
    names = [route["corpus"] for route in record["routes"]]
    free = [k for k, route in enumerate(record["routes"]) if route["chosen_on_dev"]]
    own = routes.logits(feats, routes.own_tau, 0.0)
    dev = DevLogits(collected, own, routes.logits(feats, routes.own_tau, 1.0), list(first.labels),
                    loader.dataset.source_ids, report.labels)  # fmt: skip
    rows_of = dev.rows()
    if args.target not in rows_of:
        parser.error(f"--target {args.target!r} has no dev rows here; choose one of {sorted(rows_of)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"Two routes share a corpus name: {names}.")
    floor = {name: f - (f * (1 - f) / rows_of[name]) ** 0.5 for name, f in dev.score(own).items()}

    def counted(times: float) -> Score:
        return lambda logits: {k: v * (times if k == args.target else 1) for k, v in dev.score(logits).items()}

    def row_scores(logits: torch.Tensor) -> dict[str, float]:
        found = dev.score(logits)
        meld = dev.score(logits, "weighted_f1").get("meld")
        return {**found, "meld weighted-F1": meld, "mean": sum(found.values()) / len(found)}

    def within_noise(logits: torch.Tensor) -> dict[str, float]:
        found = dev.score(logits)
        kept = all(v >= floor[k] for k, v in found.items() if k != args.target)
        return {args.target: found[args.target] if kept else -1.0}

    by_corpus = {ref: names.index(source_name(ref)) for ref in loader.dataset.source_ids}
    route_of_dev_id = torch.tensor([by_corpus[ref] for ref in sorted(by_corpus, key=loader.dataset.source_ids.get)])
    route_of_row = route_of_dev_id[collected.source]
    true_shares = torch.nn.functional.one_hot(route_of_row, len(names)).float()
    rules: list[tuple[str, Score, torch.Tensor]] = [("mean", dev.score, shares)]
    rules += [(f"{args.target} x{k}", counted(float(k)), shares) for k in args.counts.split(",") if k]
    rules += [(f"{args.target}, others within 1 SE", within_noise, shares), ("true corpus", dev.score, true_shares)]
    rows = []
    for rule, score, weights in rules:
        chosen, _ = choose_routes(routes, feats, weights, score, free)
        logits = sum(weights[:, k : k + 1] * routes.logits(feats, *config) for k, config in enumerate(chosen))
        rows.append({"rule": rule, **row_scores(logits), "routes": [list(config) for config in chosen]})
    rows.append({"rule": "branched path alone", **row_scores(dev.branched), "routes": None})
    columns = [k for k in rows[0] if k != "routes"]
    print_table([{k: row[k] for k in columns} for row in rows], columns)
    for row in rows[:-1]:
        print(f"{row['rule']}: " + " ".join(f"{n}:{t:g}/{w:g}" for n, (t, w) in zip(names, row["routes"])))
    same = rows[0]["routes"] == [[route["tau"], route["weight"]] for route in record["routes"]]
    print(f"the mean rule {'gives' if same else 'does NOT give'} the folder's own routes (corpus:tau/weight)")
    target_rows = route_of_row == names.index(args.target)
    target_shares = dict(zip(names, shares[target_rows].mean(dim=0).tolist()))
    print(f"mean share of each route over {args.target}'s dev rows: "
          + " ".join(f"{n} {v:.2f}" for n, v in target_shares.items()))  # fmt: skip
    result = {"routed": str(args.routed), "dev_rows": rows_of, "rows": rows, "mean_rule_is_served": same,
              "floor": floor, "target_shares": target_shares}  # fmt: skip
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
