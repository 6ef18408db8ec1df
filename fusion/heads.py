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
