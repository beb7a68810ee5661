"""A LeNet-style classifier: the feature network behind ganforge's offline image metrics.

    x (B, 1, 28, 28) in [-1, 1]
      -Conv 5x5, 32, ReLU, MaxPool 2-> (B, 32, 14, 14)
      -Conv 5x5, 64, ReLU, MaxPool 2-> (B, 64, 7, 7)
      -Linear 3136 -> 256, ReLU->      features (B, 256)   <- what FID/KID/PR/DC compare
      -Dropout 0.3, Linear 256 -> C->  logits (B, C)
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    feature_dim = 256

    def __init__(self, n_classes: int = 10, channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, self.feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
