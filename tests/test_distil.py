"""Distillation of the served hybrid into the single vector (ragtune.training.distil), on the tiny model."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from ragtune.config import Config
from ragtune.errors import ConfigError
from ragtune.records import Chunk, Pair
from ragtune.retrieval import BM25Index, dense_index, embed, fuse, fused_scores
from ragtune.training.distil import batches, distil, distil_loss, teacher_targets
from ragtune.training.validation import Validation

TOPICS = [
    "zero trust architecture removes implicit trust from the network perimeter",
    "incident response teams triage alerts and contain the breach quickly",
    "generative models can hallucinate confident but false statements",
    "privacy impact assessments document how personal data is processed",
    "supply chain risk covers third party software components and vendors",
    "red teaming probes a model with adversarial prompts before release",
    "access control policies decide which subject may read which resource",
    "data provenance records where training data came from and who changed it",
    "energy use of large model training raises environmental concerns",
    "content filters block harmful outputs such as violent or hateful text",
    "audit logs keep a tamper evident record of administrative actions",
    "multi factor authentication asks for a second proof of identity",
]


def _chunks() -> dict[str, Chunk]:
    # Two chunks a topic, with different wording around it, so the hybrid has near misses to rank.
    out = {}
    for i, topic in enumerate(TOPICS):
        out[f"c{i}a"] = Chunk(f"c{i}a", "f.pdf", (i,), f"Section {i}. {topic.capitalize()}. It matters here.", 20)
        words = topic.split()
        out[f"c{i}b"] = Chunk(f"c{i}b", "f.pdf", (i,), f"Also: {' '.join(words[:4])} in an annex, briefly.", 12)
    return out


def _pairs() -> list[Pair]:
    out = []
    for i, topic in enumerate(TOPICS):
        words = topic.split()
        out.append(Pair(f"what does {' '.join(words[1:4])} mean", f"c{i}a", "template"))
        out.append(Pair(f"how is {words[-2]} {words[-1]} handled", f"c{i}a", "template"))
        out.append(Pair(f"why {' '.join(words[:2])}", f"c{i}b", "template"))
    return out


def _hybrid_top(model, chunks, allowed, queries, weight, k):
    """The served hybrid's top k (evaluate stage: each list 10k deep, `fuse`), as chunk ids."""
    ids = sorted(allowed)
    texts = [chunks[c].text for c in ids]
    dense = dense_index(model, texts, 20, 0.5, stride=1).search(embed(model, queries), 10 * k)
    lexical = BM25Index.build(texts).search(queries, 10 * k)
    return [[ids[i] for i in row] for row in fuse(dense, lexical, weight, k)], fused_scores(dense, lexical, weight), ids


@pytest.mark.parametrize("weight", [0.0, 0.6, 1.0])
def test_candidates_are_the_hybrids_top_k_plus_the_questions_own_chunk(tiny_model, weight: float) -> None:
    chunks, pairs = _chunks(), _pairs()
    held = {"c3a", "c3b", "c7a"}  # held-out chunks: never a candidate
    allowed = set(chunks) - held
    train = [p for p in pairs if p.chunk_id in allowed]
    k = 5
    targets = teacher_targets(tiny_model, train, chunks, allowed, weight, k=k)
    top, fused, ids = _hybrid_top(tiny_model, chunks, allowed, [p.query for p in train], weight, k)
    replaced = 0
    for t, p, want, score in zip(targets, train, top, fused):
        assert t.query == p.query and len(t.candidates) == k and not set(t.candidates) & held
        if p.chunk_id in want:
            assert t.candidates == want
        else:
            # The own chunk takes the last place; the hybrid's first k-1 stay in its order.
            replaced += 1
            assert t.candidates == want[: k - 1] + [p.chunk_id]
        # The teacher is the softmax of the fused scores at temperature 0.1, and a distribution.
        logits = np.array([score.get(ids.index(c), 0.0) for c in t.candidates]) / 0.1
        want_teacher = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(t.teacher, want_teacher, rtol=1e-9)
        assert t.teacher.sum() == pytest.approx(1.0) and (t.teacher > 0).all()
    if weight == 0.0:
        # BM25 alone: the tiny random model cannot find the chunks, BM25's words can.
        assert replaced < len(train) / 3


def test_a_batch_takes_a_few_chunks_questions_and_every_chunk_has_its_turn(tiny_model) -> None:
    chunks, pairs = _chunks(), _pairs()
    targets = teacher_targets(tiny_model, pairs, chunks, set(chunks), 0.6, k=4)
    plan = batches(targets, steps=6, seed=1)
    assert len(plan) == 6
    assert all(len({t.chunk_id for t in b}) == 4 for b in plan)
    # 24 chunks with questions, 4 a step: the first 6 steps see each once.
    turns = [c for b in plan for c in {t.chunk_id for t in b}]
    assert sorted(turns) == sorted({p.chunk_id for p in pairs})
    # Every question of a chunk with few enough of them is in its chunk's turn.
    assert sum(len(b) for b in plan) == len(pairs)
    assert plan == batches(targets, steps=6, seed=1) and plan != batches(targets, steps=6, seed=2)


def test_a_distillation_step_changes_the_weights_and_its_loss_is_finite(tiny_model) -> None:
    chunks, pairs = _chunks(), _pairs()
    targets = teacher_targets(tiny_model, pairs, chunks, set(chunks), 0.6, k=6)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    opt = torch.optim.AdamW(tiny_model.parameters(), lr=1e-3)
    tiny_model.train()
    loss = distil_loss(tiny_model, targets[:8], chunks)
    assert torch.isfinite(loss.detach()) and float(loss.detach()) >= 0
    loss.backward()
    opt.step()
    changed = [k for k, v in tiny_model.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoder.layer" in k for k in changed)


def test_loss_is_zero_when_the_student_already_ranks_as_the_teacher(tiny_model) -> None:
    from ragtune.training.distil import STUDENT_SCALE, Target

    chunks = _chunks()
    ids = ["c0a", "c1a", "c2a"]
    with torch.no_grad():
        q = torch.nn.functional.normalize(torch.tensor(embed(tiny_model, ["zero trust"])), dim=-1)[0]
        d = torch.tensor(embed(tiny_model, [chunks[c].text for c in ids]))
        student = torch.softmax(STUDENT_SCALE * d @ q, dim=-1).double().numpy()
    tiny_model.eval()
    loss = distil_loss(tiny_model, [Target("zero trust", "c0a", ids, student / student.sum())], chunks)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-4)
    uniform = distil_loss(tiny_model, [Target("zero trust", "c0a", ids, np.full(3, 1 / 3))], chunks)
    assert float(uniform.detach()) > 1e-3


def _validation(chunks: dict[str, Chunk], pairs: list[Pair]) -> Validation:
    return Validation(
        [p.query for p in pairs],
        [p.generator for p in pairs],
        [p.chunk_id for p in pairs],
        list(chunks),
        [c.text for c in chunks.values()],
    )


def test_distil_never_leaves_a_model_worse_on_validation(tiny_model, tmp_path: Path) -> None:
    chunks, pairs = _chunks(), _pairs()
    val_chunks = {"c5a", "c9a"}
    train = [p for p in pairs if p.chunk_id not in val_chunks]
    validation = _validation(chunks, [p for p in pairs if p.chunk_id in val_chunks])
    cfg = Config(docs=tmp_path, distil_steps=4, evals=2, learning_rate=5e-3)
    start = validation.scores(tiny_model)["score"]
    record = distil(tiny_model, train, chunks, set(chunks) - val_chunks, cfg, "cpu", validation)
    assert record is not None and record["steps"] == 4 and record["start_score"] == start
    assert np.isfinite(record["first_loss"]) and np.isfinite(record["final_loss"])
    assert [h[0] for h in record["history"]] == [2, 4]
    assert validation.scores(tiny_model)["score"] >= start - 1e-9
    assert record["mix_scores"][str(record["mix"])] == pytest.approx(max(record["mix_scores"].values()), abs=1e-4)


def test_distillation_is_off_by_default_and_the_setting_is_checked(tiny_model, tmp_path: Path) -> None:
    from ragtune.cli import _config_from_args, build_parser

    chunks, pairs = _chunks(), _pairs()
    cfg = Config(docs=tmp_path)
    assert cfg.distil_steps == 0
    before = copy.deepcopy(tiny_model.state_dict())
    assert distil(tiny_model, pairs, chunks, set(chunks), cfg, "cpu", _validation(chunks, pairs)) is None
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())
    # On, but with nothing to validate on: it does not run, and says why.
    on = cfg.replace(distil_steps=3)
    assert distil(tiny_model, pairs, chunks, set(chunks), on, "cpu", None) == {"skipped": "no validation questions"}
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())
    assert _config_from_args(build_parser().parse_args(["run", "docs", "--distil-steps", "40"])).distil_steps == 40
    for bad in (-1, 10_001):
        with pytest.raises(ConfigError, match="distil_steps must be 0..10000"):
            Config(docs=tmp_path, distil_steps=bad)
