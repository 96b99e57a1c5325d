"""A split's tensors on the training device, batched by index slicing (no data loader)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from memo.data.split import Split


class Batch(NamedTuple):
    """One batch of a split's tensors, on the training device."""

    text: torch.Tensor
    audio: torch.Tensor
    vision: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class DeviceSplit:
    """A split's tensors on the training device, so that batching is index slicing."""

    text: torch.Tensor
    audio: torch.Tensor
    vision: torch.Tensor
    labels: torch.Tensor
    emotions: tuple[str, ...]

    @classmethod
    def from_split(cls, split: Split, device: torch.device) -> DeviceSplit:
        def put(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).to(device)

        return cls(
            put(split.text), put(split.audio), put(split.vision), put(split.labels), split.emotions
        )

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor | slice) -> Batch:
        """The samples at `index` (a tensor of positions or a slice)."""
        return Batch(self.text[index], self.audio[index], self.vision[index], self.labels[index])
