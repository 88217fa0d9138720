"""The seed's small CNN (docs/experiments.md#2): 240x240 RGB in, two classes out."""

from __future__ import annotations

import torch
from torch import nn

#: input side the flattened size 16 * 58 * 58 = 53824 implies: 240 -conv3-> 238 -pool-> 119 -conv3-> 117 -pool-> 58
INPUT_SIZE = 240


class TinyCNN(nn.Module):
    """conv 3->6 3x3, maxpool, conv 6->16 3x3, maxpool, FC 53824->128->84->2."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 3), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 58 * 58, 128), nn.ReLU(), nn.Linear(128, 84), nn.ReLU(), nn.Linear(84, classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:  # the resize240 recipe's output: cast and scale here
            images = images.float().div_(255)
        return self.head(self.features(images))


class Trainer:
    """Cross-entropy and Adam (lr 0.01) as in the seed; ``step`` is one optimisation step."""

    def __init__(self, device: str, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = TinyCNN().to(device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01)
        self.loss = nn.CrossEntropyLoss()
        self.params = sum(p.numel() for p in self.model.parameters())

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(images), labels)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())  # a host sync, as a training loop that logs its loss has
