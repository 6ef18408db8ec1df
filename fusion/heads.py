"""The small modules between the towers and the logits: each modality's normalised embedding (with its
placeholder for an absent modality) and the fusion MLP of "concat" fusion."""

from __future__ import annotations

import torch
from torch import nn


class ModalityEmbedding(nn.Module):
    """Normalises a modality's features and substitutes a learned vector where it is absent. A branched text
    tower's features are two vectors side by side, each normalised on its own (`branched`)."""

    def __init__(self, dim: int, normalize: bool = True, branched: bool = False):
        super().__init__()
        part = dim // 2 if branched else dim
        self.norm = nn.LayerNorm(part) if normalize else nn.Identity()
        self.branch_norm = (nn.LayerNorm(part) if normalize else nn.Identity()) if branched else None
        self.placeholder = nn.Parameter(torch.randn(dim) * 0.02)

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        if self.branch_norm is None:
            return self.norm(feats)
        first, second = feats.chunk(2, dim=1)
        return torch.cat([self.norm(first), self.branch_norm(second)], dim=1)

    def forward(self, feats: torch.Tensor | None, present: torch.Tensor) -> torch.Tensor:
        missing = self.placeholder.expand(present.shape[0], -1)
        if feats is None:
            return missing
        return torch.where(present.unsqueeze(1), self.normalize(feats), missing)


class FusionHead(nn.Module):
    """Concatenated modality embeddings -> dense layers -> logits."""

    def __init__(self, in_dim: int, hidden: list[int], dropout: float, num_labels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = width
        layers.append(nn.Linear(in_dim, num_labels))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class RoutedHead(nn.Module):
    """Several linear heads over the same features and a router that reads which kind of text it is: the logits
    are the router's softmax weights times each head's logits, summed. One route is a plain linear head; with
    every route's logits shifted alike the answer shifts alike (so a logit adjustment still folds into biases).
    With `ngram_buckets` the router also reads the text's hashed character n-grams (`fusion.ngrams`): its
    logits are a linear layer on the features plus a table row per n-gram, weighted."""

    def __init__(self, dim: int, num_labels: int, routes: int, ngram_buckets: int = 0):
        super().__init__()
        self.routes, self.num_labels = routes, num_labels
        self.heads = nn.Linear(dim, routes * num_labels)
        self.router = nn.Linear(dim, routes)
        self.ngrams = nn.EmbeddingBag(ngram_buckets + 1, routes, mode="sum", padding_idx=0) if ngram_buckets else None

    def route_weights(self, x: torch.Tensor, ngrams: Ngrams | None = None) -> torch.Tensor:
        """(batch, routes): how much each route's head counts for each row."""
        scores = self.router(x)
        if self.ngrams is not None:
            if ngrams is None:
                raise ValueError(
                    "This text head's router reads the text's n-grams: pass text_ngrams (the Preprocessor makes them)."
                )
            ids, weights = ngrams
            scores = scores + self.ngrams(ids, per_sample_weights=weights.to(self.ngrams.weight.dtype))
        return scores.softmax(dim=-1)

    def forward(self, x: torch.Tensor, ngrams: Ngrams | None = None) -> torch.Tensor:
        logits = self.heads(x).view(len(x), self.routes, self.num_labels)
        return (self.route_weights(x, ngrams).unsqueeze(-1) * logits).sum(dim=1)

    @property
    def bias(self) -> torch.Tensor:
        """(routes, labels): each route's bias, a view, so adding one value per label shifts every route alike."""
        return self.heads.bias.view(self.routes, self.num_labels)


Ngrams = tuple[torch.Tensor, torch.Tensor]  # (ids, weights), as `fusion.ngrams.ngram_batch` pads them


def text_head(dim: int, num_labels: int, routes: int = 1, ngram_buckets: int = 0) -> nn.Module:
    """The text tower's head: linear, or with `routes` > 1 a `RoutedHead` (its router reading n-grams too when
    `ngram_buckets` > 0)."""
    if routes > 1:
        return RoutedHead(dim, num_labels, routes, ngram_buckets)
    if ngram_buckets:
        raise ValueError("Only a routed text head (text_routes > 1) reads n-grams.")
    return nn.Linear(dim, num_labels)
