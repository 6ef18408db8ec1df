"""A grown text branch pooled with the run it grew from, over a grid of pool weights and of the first run's
class-prior adjustment, on the first run's dev splits: each corpus's macro-F1 (MELD also weighted-F1).

    PYTHONPATH=. python bench/pool_grid.py --first runs/default-text-mix --branched runs/default-text-branch \
        [--taus 0,0.3,0.5,0.85] [--weights 0,0.2,0.3,0.4,0.5,0.6,0.7] [--out runs/pool_grid.json]

The first run's logits are served with its own tau (its metrics.json); "tau" here replaces it, (logits + (own
- tau) x log(prior) / temperature), to show how much of what the pool trades is the class prior.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench.common import print_table, write_json  # noqa: E402
from train.branch import dev_logits, pool_logits  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", type=Path, required=True, help="the run the branch grew from")
    parser.add_argument("--branched", type=Path, required=True, help="the branched run (python -m train output)")
    parser.add_argument("--taus", default="0,0.3,0.5,0.85")
    parser.add_argument("--weights", default="0,0.2,0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    dev = dev_logits(args.first, args.branched)
    calibration = json.loads((args.first / "metrics.json").read_text())["calibration"]
    applied = calibration["logit_adjustment"]
    log_prior = torch.tensor([applied["prior"][name] for name in dev.names]).log()
    rows = []
    for tau in map(float, args.taus.split(",")):
        first = dev.first + (applied["tau"] - tau) * log_prior / calibration["temperature"]
        for weight in map(float, args.weights.split(",")):
            pooled = pool_logits(first, dev.branched, weight)
            scores = dev.score(pooled)
            row = {"tau": tau, "weight": weight, **scores, "mean": sum(scores.values()) / len(scores)}
            rows.append(row | {"meld weighted-F1": dev.score(pooled, "weighted_f1").get("meld")})
    print_table(rows, list(rows[0]))
    result = {"first": str(args.first), "branched": str(args.branched), "dev_rows": dev.rows(), "rows": rows}
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
