"""Recurrent sequence encoder shared by EEA and the RNN baselines."""

from __future__ import annotations

import torch
from torch import nn

from memo.errors import config_error

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNEncoder(nn.Module):
    """LSTM/GRU over (B, T, D); returns the last time step's output.

    With `bidirectional`, the two directions are summed (`merge="sum"`, EEA: output size
    `hidden`) or concatenated (`merge="concat"`, baselines: output size 2 * `hidden`).
    """

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        num_layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.0,
        rnn: str = "lstm",
        merge: str = "sum",
    ) -> None:
        super().__init__()
        if rnn not in RNN_TYPES:
            raise config_error("model.rnn", rnn, " | ".join(RNN_TYPES))
        if merge not in ("sum", "concat"):
            raise ValueError(f"merge must be 'sum' or 'concat', got {merge!r}")
        self.rnn = RNN_TYPES[rnn](
            input_dim,
            hidden,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.hidden = hidden
        self.bidirectional = bidirectional
        self.merge = merge
        self.output_dim = 2 * hidden if bidirectional and merge == "concat" else hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        last = out[:, -1]
        if self.bidirectional and self.merge == "sum":
            return last[:, : self.hidden] + last[:, self.hidden :]
        return last
