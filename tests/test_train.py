"""The multi-question ranking loss and one-row-per-chunk training data."""

from __future__ import annotations

import math

import pytest
import torch

from ragtune.records import Chunk, Pair
from ragtune.train import MultiQueryRankingLoss, training_rows


class _FixedEncoder(torch.nn.Module):
    """Returns preset embeddings, one tensor per input column, in call order."""

    def __init__(self, outputs: list[torch.Tensor]) -> None:
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, features: dict) -> dict:
        return {"sentence_embedding": self.outputs.pop(0)}


def test_loss_matches_cross_entropy_worked_by_hand() -> None:
    # Two chunks along the axes; query 0 of each row points at its own chunk,
    # query 1 of row 0 points at the wrong chunk.
    q0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    q1 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    pos = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # normalised inside the loss
    loss = MultiQueryRankingLoss(_FixedEncoder([q0, q1, pos]), scale=1.0)([{}, {}, {}])
    right = -math.log(math.e / (math.e + 1))  # logit 1 for the right chunk, 0 for the other
    wrong = -math.log(1 / (math.e + 1))
    expected = ((right + right) / 2 + (wrong + right) / 2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_rows_cycle_questions_and_never_copy_chunks_into_pairs() -> None:
    chunks = {c: Chunk(c, "doc.pdf", (1,), f"text of {c}", 3) for c in ("a", "b")}
    pairs = [Pair("qa1", "a", "g"), Pair("qb1", "b", "g"), Pair("qa2", "a", "g"), Pair("qa3", "a", "g")]
    rows = training_rows(pairs, chunks, 3)
    assert rows == {
        "query_0": ["qa1", "qb1"],
        "query_1": ["qa2", "qb1"],
        "query_2": ["qa3", "qb1"],
        "positive": ["text of a", "text of b"],
    }


def test_training_lowers_the_loss_on_the_tiny_model(tiny_model) -> None:
    texts = [f"topic {w} is described in detail here" for w in ("alpha", "beta", "gamma", "delta")]
    queries = [[f"what about {w}?", f"{w} details"] for w in ("alpha", "beta", "gamma", "delta")]
    loss_fn = MultiQueryRankingLoss(tiny_model)
    features = [tiny_model.preprocess([q[i] for q in queries]) for i in range(2)] + [tiny_model.preprocess(texts)]
    opt = torch.optim.AdamW(tiny_model.parameters(), lr=1e-2)
    first = loss_fn(features).item()
    for _ in range(15):
        loss = loss_fn(features)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss_fn(features).item() < 0.5 * first
