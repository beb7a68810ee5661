"""The classifiers behind ganforge's offline image metrics: LeNet for 28x28 grey, EmojiConvNet for colour.

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


class EmojiConvNet(nn.Module):
    """The colour feature network (``emoji-convnet``): a small VGG-style classifier of 64x64
    pictures trained to name an emoji's category and subcategory.

        x (B, 3, 64, 64) in [-1, 1]
          -[Conv 3x3, BN, ReLU, MaxPool 2] x 4, widths 32, 64, 128, 256-> (B, 256, 4, 4)
          -Flatten, Linear 4096 -> 256, ReLU->  features (B, 256)   <- what FID/KID/PR/DC compare
          -Dropout 0.3, Linear 256 -> C->       category logits (B, C)
          -Dropout 0.3, Linear 256 -> S->       subcategory logits (B, S) (training only)

    Flattening (not pooling) the last map keeps where things are, so an occlusion or a shifted
    drawing moves the features.
    """

    feature_dim = 256

    def __init__(self, n_classes: int = 10, channels: int = 3, n_subclasses: int = 99):
        super().__init__()
        layers, c = [], channels
        for width in (32, 64, 128, 256):
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = width
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(256 * 4 * 4, self.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, n_classes))
        self.sub_head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, n_subclasses))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
