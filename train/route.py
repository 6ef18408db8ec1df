"""A text branch whose class prior and Reddit weight depend on the kind of text it reads.

One class-prior adjustment (tau) and one pool weight for every text trade the corpora against each other: Reddit
and TV dialogue want "neutral" said often, tweets without a neutral label want the common labels pushed down,
and only Reddit wants the Reddit branch (docs/training.md). Here each corpus of the first run's data gets its own
route: the pool of the two calibrated heads (`train.branch`) at its own tau and weight. A router (multinomial
logistic regression on the head's input features, fitted on training rows, every corpus counting alike) says
how much a text looks like each corpus, and the model serves the router's weights times the routes' logits
(`fusion.heads.RoutedHead`). Each route's (tau, weight) is chosen on the dev splits, by coordinate ascent on the
mean of the corpora's dev macro-F1 (the mix's own selection rule), so a text from no corpus gets a blend of the
routes of those it resembles.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from fusion.model import EmotionFusionModel
from fusion.ngrams import hashed_ngrams, ngram_batch
from train.branch import calibrated_head, check_shared

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
NGRAM_BUCKETS = 2**16  # the router's n-gram table: 65,536 x routes floats (2.6 MB for ten routes)


def head_inputs(model: EmotionFusionModel, loader, desc: str) -> tuple[Any, torch.Tensor]:
    """(`train.evaluate.Collected` of the text logits, the text head's input features) over a loader's rows."""
    from train.evaluate import collect_logits

    feats: list[torch.Tensor] = []
    handle = model.text_head.register_forward_hook(lambda _module, args, _out: feats.append(args[0].float().cpu()))
    try:
        collected = collect_logits(model, loader, desc=desc, output="text_logits")
    finally:
        handle.remove()
    return collected, torch.cat(feats)


def fit_router(feats: torch.Tensor, source: torch.Tensor, routes: int, decay: float = 1e-3, steps: int = 200):
    """A linear layer features -> routes, fitted on the rows' source ids (`fit_balanced`)."""
    feats = feats.clone()  # tensors made in inference mode cannot take part in autograd
    router = nn.Linear(feats.shape[1], routes)
    fit_balanced(list(router.parameters()), lambda: router(feats), router.weight, source, routes, decay, steps)
    return router.requires_grad_(False)


def fit_ngram_router(
    ngrams: list[tuple[np.ndarray, np.ndarray]],
    source: torch.Tensor,
    routes: int,
    buckets: int,
    decay: float = 1e-6,
    steps: int = 100,
) -> tuple[nn.EmbeddingBag, torch.Tensor]:
    """(table, bias): hashed n-grams (`fusion.ngrams.hashed_ngrams` of each row) -> routes, fitted like
    `fit_router`. The n-grams are many and each row has few, so the decay is small (scikit-learn's C = 10 at
    50,000 rows)."""
    ids = torch.from_numpy(np.concatenate([row for row, _ in ngrams]))
    values = torch.from_numpy(np.concatenate([row for _, row in ngrams]))
    offsets = torch.tensor([0] + [len(row) for row, _ in ngrams[:-1]]).cumsum(0)
    table = nn.EmbeddingBag(buckets + 1, routes, mode="sum", padding_idx=0)
    bias = nn.Parameter(torch.zeros(routes))
    with torch.no_grad():
        table.weight.zero_()

    def scores() -> torch.Tensor:
        return table(ids, offsets, per_sample_weights=values) + bias

    fit_balanced([table.weight, bias], scores, table.weight, source, routes, decay, steps)
    return table.requires_grad_(False), bias.detach()


def fit_balanced(
    params: list[torch.Tensor],
    scores: Callable[[], torch.Tensor],
    decayed: torch.Tensor,
    source: torch.Tensor,
    routes: int,
    decay: float,
    steps: int,
) -> None:
    """L-BFGS on the cross-entropy of `scores()` against the rows' source ids, each source weighted by the
    inverse of its row count (every corpus counts alike), plus `decay` x the squared `decayed`."""
    source = source.clone()
    counts = torch.bincount(source, minlength=routes).clamp(min=1).float()
    weight = len(source) / (routes * counts)
    optimizer = torch.optim.LBFGS(params, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(scores(), source, weight=weight) + decay * decayed.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)


@dataclasses.dataclass
class Routes:
    """The two models' heads as each route's (tau, weight) makes them, over given features."""

    first_weight: torch.Tensor  # the first model's calibrated head, padded to read both paths' features
    first_bias: torch.Tensor
    branched_weight: torch.Tensor
    branched_bias: torch.Tensor
    log_prior: torch.Tensor  # the first run's training prior; its logits were adjusted by `own_tau` x this
    own_tau: float

    def head(self, tau: float, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One route's weight and bias: the pool of the calibrated heads, the first re-adjusted to `tau`."""
        bias = self.first_bias + (self.own_tau - tau) * self.log_prior
        return (
            (1 - weight) * self.first_weight + weight * self.branched_weight,
            (1 - weight) * bias + weight * self.branched_bias,
        )

    def logits(self, feats: torch.Tensor, tau: float, weight: float) -> torch.Tensor:
        w, b = self.head(tau, weight)
        return feats @ w.T + b


@torch.no_grad()
def routes_of(first: EmotionFusionModel, branched: EmotionFusionModel, calibration: dict[str, Any]) -> Routes:
    """`Routes` from the first run, its calibration (its metrics.json) and the branch grown on it."""
    check_shared(first, branched)
    adjusted = calibration["logit_adjustment"]
    w_first, b_first = calibrated_head(first)
    w_branched, b_branched = calibrated_head(branched)
    prior = torch.tensor([adjusted["prior"][name] for name in first.labels])
    return Routes(
        first_weight=torch.cat([w_first, torch.zeros_like(w_first)], dim=1),
        first_bias=b_first,
        branched_weight=w_branched,
        branched_bias=b_branched,
        log_prior=prior.log() / float(first.temperature),
        own_tau=float(adjusted["tau"]),
    )


def choose_routes(
    routes: Routes,
    feats: torch.Tensor,
    shares: torch.Tensor,
    score: Callable[[torch.Tensor], dict[str, float]],
    free: list[int],
    sweeps: int = 3,
) -> tuple[list[tuple[float, float]], list[dict[str, Any]]]:
    """Each route's (tau, weight) on the grid TAUS x WEIGHTS: coordinate ascent on the mean of `score(logits)`
    (per-corpus dev macro-F1), from every route at the first model's own answer (its tau, weight 0); only the
    `free` routes move (those of corpora with dev rows), each only for a gain of at least 1e-4. `shares`: the
    router's weights of the dev rows. Returns the choice and each accepted step."""
    taus = sorted({*TAUS, routes.own_tau})
    grid = [(tau, weight) for tau in taus for weight in WEIGHTS]
    cache = {config: routes.logits(feats, *config) for config in grid}
    chosen = [(routes.own_tau, 0.0)] * shares.shape[1]
    current = sum(shares[:, k : k + 1] * cache[c] for k, c in enumerate(chosen))

    def mean(found: dict[str, float]) -> float:
        return sum(found.values()) / len(found)

    best = mean(score(current))
    steps = [{"route": None, "tau": routes.own_tau, "weight": 0.0, "mean": best}]
    for _ in tqdm(range(sweeps), desc="routes", leave=False):
        moved = False
        for k in free:
            rest = current - shares[:, k : k + 1] * cache[chosen[k]]
            for config in grid:
                trial = rest + shares[:, k : k + 1] * cache[config]
                value = mean(score(trial))
                if value > best + 1e-4:
                    best, chosen[k], current, moved = value, config, trial, True
                    steps.append({"route": k, "tau": config[0], "weight": config[1], "mean": value})
        if not moved:
            break
    return chosen, steps


@torch.no_grad()
def routed_model(
    branched: EmotionFusionModel,
    routes: Routes,
    chosen: list[tuple[float, float]],
    router: nn.Linear,
    ngrams: tuple[nn.EmbeddingBag, torch.Tensor] | None = None,
) -> EmotionFusionModel:
    """The branched model with a `RoutedHead`: one route per (tau, weight) in `chosen`, `router` between them,
    its scores plus those of the n-gram router (`fit_ngram_router`'s table and bias) when given."""
    preprocess = {**branched.preprocess_cfg.to_dict(), "text_ngrams": ngrams[0].num_embeddings - 1 if ngrams else 0}
    config = {**branched.config, "temperature": 1.0, "text_routes": len(chosen), "preprocess": preprocess}
    model = EmotionFusionModel(**config)
    state = model.state_dict()
    state.update({k: v for k, v in branched.state_dict().items() if not k.startswith("text_head.")})
    heads = [routes.head(*config) for config in chosen]
    state["text_head.heads.weight"] = torch.cat([w for w, _ in heads])
    state["text_head.heads.bias"] = torch.cat([b for _, b in heads])
    state["text_head.router.weight"], state["text_head.router.bias"] = router.weight, router.bias
    if ngrams:
        state["text_head.ngrams.weight"] = ngrams[0].weight
        state["text_head.router.bias"] = router.bias + ngrams[1]  # the two routers' scores add
    model.load_state_dict(state, strict=True)
    model.tokenizer = branched.tokenizer
    return model.eval()


def sample_per_source(ds, rows: int, seed: int = 0):
    """At most `rows` rows of each source of `ds` (its "source" column), drawn at random."""
    generator = torch.Generator().manual_seed(seed)
    by_source: dict[str, list[int]] = {}
    for index, source in enumerate(ds["source"]):
        by_source.setdefault(source, []).append(index)
    picked = []
    for indices in by_source.values():
        order = torch.randperm(len(indices), generator=generator)[:rows]
        picked += [indices[i] for i in order.tolist()]
    return ds.select(sorted(picked))


def route_folder(
    first_dir: Path,
    branched_dir: Path,
    out: Path,
    train_rows: int = 2000,
    ngram_rows: int = 8000,
    ngram_buckets: int = NGRAM_BUCKETS,
) -> dict:
    """Route a finished branched run and the run it grew from into the model folder `out`: the router fitted on
    at most `train_rows` training rows of each corpus of the first run's data (their features) and, with
    `ngram_buckets`, on at most `ngram_rows` (their hashed n-grams, which need no encoder); each route's
    (tau, weight) chosen on the dev rows (`choose_routes`). Writes `out`/route.json (the routes, the router's
    dev accuracy, each corpus's dev macro-F1 for the first model alone and routed) and returns it."""
    from fusion.hub import load_model_folder
    from fusion.preprocess import Preprocessor
    from train.branch import DevLogits, run_splits
    from train.export import save_model_folder
    from train.loader import make_loader
    from train.report import source_name, write_json

    first, tokenizer = load_model_folder(first_dir)
    branched, _ = load_model_folder(branched_dir)
    calibration = json.loads((first_dir / "metrics.json").read_text())["calibration"]
    routes = routes_of(first, branched, calibration)
    splits, report, config = run_splits(first_dir)
    preprocessor = Preprocessor(first.preprocess_cfg, tokenizer, is_train=False)
    dev_loader = make_loader(splits["validation"], preprocessor, 64, labels=first.labels)
    train_sample = sample_per_source(splits["train"], train_rows, config.seed)
    train_loader = make_loader(train_sample, preprocessor, 64, labels=first.labels)
    source_ids = dev_loader.dataset.source_ids
    route_ids = train_loader.dataset.source_ids  # every corpus of the training data; some have no dev rows
    if not set(source_ids) <= set(route_ids):
        raise ValueError(f"Corpora with dev rows but no training rows: {sorted(set(source_ids) - set(route_ids))}.")
    collected, dev_feats = head_inputs(branched, dev_loader, "dev rows")
    train_collected, train_feats = head_inputs(branched, train_loader, "training rows")
    router = fit_router(train_feats, train_collected.source, len(route_ids))
    scores = {"features": router(dev_feats)}
    ngrams, dev_ngrams = None, None
    if ngram_buckets:
        texts = sample_per_source(splits["train"], ngram_rows, config.seed)
        ids = [route_ids[ref] for ref in texts["source"]]
        rows = [hashed_ngrams(t or "", ngram_buckets) for t in tqdm(texts["text"], desc="n-grams", leave=False)]
        ngrams = fit_ngram_router(rows, torch.tensor(ids), len(route_ids), ngram_buckets)
        batch = ngram_batch([t or "" for t in splits["validation"]["text"]], ngram_buckets)
        dev_ngrams = (batch["text_ngrams"], batch["text_ngram_weights"])
        scores["n-grams"] = ngrams[0](dev_ngrams[0], per_sample_weights=dev_ngrams[1]) + ngrams[1]
        scores["both"] = scores["features"] + scores["n-grams"]
    shares = scores["both" if ngrams else "features"].softmax(dim=-1)
    dev = DevLogits(collected, routes.logits(dev_feats, routes.own_tau, 0.0), routes.logits(dev_feats, routes.own_tau, 1.0),
                    list(first.labels), source_ids, report.labels)  # fmt: skip
    free = [route_ids[ref] for ref in source_ids]
    names = [source_name(ref) for ref in route_ids]
    chosen, steps = choose_routes(routes, dev_feats, shares, dev.score, free)
    to_route = torch.tensor([route_ids[ref] for ref in sorted(source_ids, key=source_ids.get)])
    true_routes = to_route[collected.source]
    router_accuracy = {k: float((v.argmax(dim=1) == true_routes).float().mean()) for k, v in scores.items()}
    model = routed_model(branched, routes, chosen, router, ngrams)
    save_model_folder(model, tokenizer, out)
    with torch.no_grad():
        routed_logits = model.text_head(dev_feats, dev_ngrams)  # what the folder serves, from the dev rows
    record = {
        "first": str(first_dir),
        "branched": str(branched_dir),
        "routes": [{"corpus": n, "tau": t, "weight": w, "chosen_on_dev": k in free}
                   for k, (n, (t, w)) in enumerate(zip(names, chosen))],
        "router_dev_accuracy": router_accuracy,
        "router_train_rows": {"features": train_rows, "n-grams": ngram_rows if ngrams else 0},
        "ngram_buckets": ngram_buckets,
        "dev_rows": dev.rows(),
        "dev_macro_f1": {"first": dev.score(dev.first), "routed": dev.score(routed_logits)},
        "dev_weighted_f1": {"first": dev.score(dev.first, "weighted_f1"), "routed": dev.score(routed_logits, "weighted_f1")},
        "steps": steps,
    }  # fmt: skip
    args = json.loads((branched_dir / "training_args.json").read_text())
    write_json(
        out / "training_args.json",
        {
            **args,
            "route": {k: record[k] for k in ("first", "branched", "routes", "router_train_rows", "ngram_buckets")},
        },
    )
    write_json(out / "route.json", record)
    return record
