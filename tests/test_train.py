"""The multi-question ranking loss and one-row-per-chunk training data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ragtune.records import Chunk, Pair
from ragtune.training.losses.ranking import MultiQueryRankingLoss
from ragtune.training.trainer import training_rows


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
        "chunk": ["text of a", "text of b"],
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


class _KeywordEncoder:
    """Embeds text as normalised counts of a few keywords, so similarities can be worked out by hand."""

    KEYWORDS = ("firewall", "router", "policy", "audit")

    def encode(self, texts: list[str], **kw) -> "np.ndarray":
        import numpy as np

        vecs = np.array([[t.lower().count(k) for k in self.KEYWORDS] for t in texts], dtype=np.float32) + 1e-6
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def _chunks(texts: dict[str, str]) -> dict[str, Chunk]:
    return {cid: Chunk(cid, "d.pdf", (1,), t, 5) for cid, t in texts.items()}


def test_hard_negative_is_the_closest_wrong_chunk() -> None:
    from ragtune.training.negatives import mine_hard_negatives

    chunks = _chunks(
        {
            "fw": "firewall firewall router",
            "rt": "router router firewall",  # shares words with fw: the hard negative for a firewall question
            "po": "policy audit",
            "au": "audit audit",
        }
    )
    pairs = [Pair("firewall router", "fw", "g"), Pair("audit policy", "po", "g")]
    negatives = mine_hard_negatives(_KeywordEncoder(), pairs, chunks, set(chunks), margin=1.0)
    assert negatives == {"fw": "rt", "po": "au"}


def test_likely_false_negatives_and_held_out_chunks_are_skipped() -> None:
    from ragtune.training.negatives import mine_hard_negatives

    chunks = _chunks(
        {
            "fw": "firewall router",
            "dup": "firewall router firewall router",  # same direction as fw: a near-duplicate
            "rt": "router",
            "po": "policy",
        }
    )
    pairs = [Pair("firewall router", "fw", "g")]
    # "dup" is a near-duplicate of the positive, "rt" is held out: "po" is all that is left.
    assert mine_hard_negatives(_KeywordEncoder(), pairs, chunks, {"fw", "dup", "po"}) == {"fw": "po"}
    # A candidate scoring above margin x the positive's score is not taken.
    assert mine_hard_negatives(_KeywordEncoder(), pairs, chunks, {"fw", "rt"}, margin=0.5) == {}


def test_same_theme_negatives_are_preferred_when_there_is_one() -> None:
    from ragtune.training.negatives import mine_hard_negatives

    chunks = _chunks(
        {
            "fw": "firewall router",
            "rt": "router",  # ranked first for the question, but on another theme
            "au": "audit firewall policy",  # ranked lower, same theme as the positive
            "po": "policy",
        }
    )
    chunks["fw"] = Chunk("fw", "d.pdf", (1,), "firewall router", 5, ("network",))
    chunks["au"] = Chunk("au", "d.pdf", (1,), "audit firewall policy", 5, ("network", "governance"))
    pairs = [Pair("firewall router", "fw", "g")]
    assert mine_hard_negatives(_KeywordEncoder(), pairs, chunks, set(chunks), margin=1.0) == {"fw": "rt"}
    preferred = mine_hard_negatives(_KeywordEncoder(), pairs, chunks, set(chunks), margin=1.0, same_theme=True)
    assert preferred == {"fw": "au"}
    # No candidate on the positive's theme: the best-ranked one is still taken.
    no_theme = {**chunks, "au": Chunk("au", "d.pdf", (1,), "audit firewall policy", 5)}
    fallback = mine_hard_negatives(_KeywordEncoder(), pairs, no_theme, set(chunks), margin=1.0, same_theme=True)
    assert fallback == {"fw": "rt"}


def test_rows_carry_the_negative_and_the_loss_uses_it() -> None:
    chunks = _chunks({"a": "text a", "b": "text b", "n": "text n"})
    rows = training_rows([Pair("qa", "a", "g"), Pair("qb", "b", "g")], chunks, 1, {"a": "n", "b": "a"})
    assert rows == {"query_0": ["qa", "qb"], "chunk": ["text a", "text b"], "hard_negative": ["text n", "text a"]}
    # Query 0 matches its own chunk and its negative equally: the negative must cost something.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    neg = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    plain = MultiQueryRankingLoss(_FixedEncoder([q, pos]), scale=1.0)([{}, {}]).item()
    with_neg = MultiQueryRankingLoss(_FixedEncoder([q, pos, neg]), scale=1.0, with_negatives=True)([{}, {}, {}]).item()
    row0 = -math.log(math.e / (math.e + 1 + math.e + math.exp(-1)))  # logits: pos a 1, pos b 0, neg 1, neg -1
    row1 = -math.log(math.e / (1 + math.e + 1 + 1))
    assert with_neg == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert with_neg > plain


def test_validation_score_is_the_mean_over_question_kinds() -> None:
    from ragtune.training.validation import Validation

    corpus = {"f": "firewall firewall", "r": "router router", "p": "policy policy"}
    # Kind "a": one question ranked 1st (RR 1), one ranked 2nd (RR 1/2) -> 0.75.
    # Kind "b": one question ranked 1st -> 1.0. The mean counts each kind once.
    validation = Validation(
        queries=["firewall", "router firewall firewall", "policy"],
        kinds=["a", "a", "b"],
        relevant=["f", "r", "p"],
        corpus_ids=list(corpus),
        corpus_texts=list(corpus.values()),
    )
    scores = validation.scores(_KeywordEncoder())
    assert scores == {"mrr@10_a": 0.75, "mrr@10_b": 1.0, "score": pytest.approx(0.875)}


class _DistanceToTarget:
    """A validation whose score peaks when the model's weights equal `target`'s."""

    def __init__(self, target: dict[str, torch.Tensor]) -> None:
        self.target = target

    def scores(self, model: torch.nn.Module) -> dict[str, float]:
        state = model.state_dict()
        return {"score": -sum(float((state[k] - v).abs().sum()) for k, v in self.target.items())}


def _perturbed(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }


def _validation_wanting(tiny_model, want: float) -> tuple[Any, dict[str, torch.Tensor], dict[str, torch.Tensor], Any]:
    """The tiny model holding a perturbed copy of its weights, its own weights (the base), the perturbed ones, and
    a validation whose score peaks at `want` of the change between them."""
    import copy

    model = copy.deepcopy(tiny_model)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = _perturbed(model)
    target = {k: torch.lerp(base[k], tuned[k], want) if base[k].is_floating_point() else base[k] for k in base}
    model.load_state_dict(tuned)
    return model, base, tuned, _DistanceToTarget(target)


@pytest.mark.parametrize(
    ("want", "tried"), [(0.75, {0.0, 0.5, 0.75, 1.0}), (0.0, {0.0, 0.5, 0.75, 1.0}), (1.0, {0.0, 0.75, 1.0})]
)
def test_choose_mix_keeps_the_share_validation_prefers(tiny_model, want: float, tried: set[float]) -> None:
    from ragtune.training.validation import choose_mix

    model, base, _, validation = _validation_wanting(tiny_model, want)
    alpha, scores = choose_mix(model, base, validation, validation.scores(tiny_model)["score"])
    # The scan from 1.0 down stops at the first share that scores worse than the one before.
    assert alpha == want and set(scores) == tried
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, validation.target[k], atol=1e-6, rtol=0)
    if want == 0.0:
        # Nothing beat the base: the model is the base, exactly.
        assert all(torch.equal(v, base[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("want", "chosen"), [(1.0, 0.5), (0.75, 0.5), (0.3, 0.5), (0.0, 0.0)])
def test_choose_mix_keeps_no_more_than_its_cap(tiny_model, want: float, chosen: float) -> None:
    from ragtune.training.validation import choose_mix

    # Validation prefers `want` of the change; with a cap of half, the mix keeps at most half, or the base
    # itself when half scores below it. All of the change is still recorded when its score is known.
    model, base, tuned, validation = _validation_wanting(tiny_model, want)
    base_score, tuned_score = validation.scores(tiny_model)["score"], validation.scores(model)["score"]
    alpha, scores = choose_mix(model, base, validation, base_score, tuned_score, cap=0.5)
    assert alpha == chosen and set(scores) == {0.0, 0.5, 1.0}
    for k, v in model.state_dict().items():
        expected = torch.lerp(base[k], tuned[k], chosen) if base[k].is_floating_point() else base[k]
        torch.testing.assert_close(v, expected, atol=1e-6, rtol=0)


def test_cached_loss_gives_the_same_loss_and_gradients(tiny_model) -> None:
    import copy

    from ragtune.training.losses import cached_ranking_loss

    texts = [f"topic {w} is described in detail here" for w in ("alpha", "beta", "gamma", "delta", "epsilon")]
    queries = [[f"what about {w}?", f"{w} details"] for w in ("alpha", "beta", "gamma", "delta", "epsilon")]
    grads = []
    for make in (lambda m: MultiQueryRankingLoss(m), lambda m: cached_ranking_loss(m, mini_batch_size=2)):
        model = copy.deepcopy(tiny_model)
        model.eval()  # no dropout, so both passes see the same network
        features = [model.preprocess([q[i] for q in queries]) for i in range(2)] + [model.preprocess(texts)]
        loss = make(model)(features)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (plain_loss, plain), (cached_loss, cached) = grads
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    assert len(plain) == len(cached) > 0
    for a, b in zip(plain, cached):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_checkpoint_marker_is_written_after_its_files_reach_the_disk(tmp_path, monkeypatch) -> None:
    import json
    import os

    from ragtune.training import checkpoints as train
    from ragtune.training.checkpoints import CHECKPOINT_MARKER, checkpoint_problem, mark_complete

    folder = tmp_path / "checkpoint-4"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    (folder / "sub" / "optimizer.pt").write_bytes(b"o" * 500)
    (folder / "trainer_state.json").write_text('{"global_step": 4}')
    order: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        order.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(train.os, "fsync", fsync)
    mark_complete(folder, 4)
    marker = str(folder / CHECKPOINT_MARKER)
    synced_before = [str(folder / "model.safetensors"), str(folder / "sub" / "optimizer.pt"), str(folder / "sub")]
    assert order.index(marker) > max(order.index(path) for path in synced_before)
    assert order[-1] == str(folder)  # the marker's name is on the disk too
    assert json.loads((folder / CHECKPOINT_MARKER).read_text()) == {
        "step": 4,
        "files": {"model.safetensors": 1000, "sub/optimizer.pt": 500, "trainer_state.json": 18},
    }
    assert checkpoint_problem(folder) is None
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    assert checkpoint_problem(folder) is not None


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_is_the_arithmetic_training_runs_in(tiny_model, tmp_path, precision: str) -> None:
    from pathlib import Path

    from ragtune.config import Config
    from ragtune.training.trainer import fine_tune

    chunks = _chunks(
        {
            f"c{i}": f"section {i} covers the {w} control in detail"
            for i, w in enumerate(("firewall", "router", "policy", "audit", "backup", "logging"))
        }
    )
    pairs = [Pair(f"which section covers {c.text.split()[3]}?", cid, "offline") for cid, c in chunks.items()]
    seen: set[torch.dtype] = set()
    linear = next(m for m in tiny_model.modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(lambda mod, args, out: seen.add(out.dtype) if torch.is_grad_enabled() else None)
    cfg = Config(docs=Path("d"), max_steps=2, batch_size=2, precision=precision, device="cpu")
    try:
        result = fine_tune(tiny_model, pairs, chunks, cfg, tmp_path / "work", "cpu")
    finally:
        hook.remove()
    assert result.precision == precision and result.steps == 2
    # What the layers computed in while training: bf16 autocast casts the matmuls.
    assert seen == {torch.bfloat16 if precision == "bf16" else torch.float32}


def test_fp16_needs_a_gpu() -> None:
    from pathlib import Path

    from ragtune.config import Config, ConfigError
    from ragtune.models import resolve_precision

    with pytest.raises(ConfigError, match=r"^precision fp16 needs a CUDA GPU \(device is 'cpu'\)") as e:
        Config(docs=Path("d"), precision="fp16", device="cpu")
    assert e.value.setting == "precision"
    with pytest.raises(ConfigError, match="training runs on cpu"):
        resolve_precision("fp16", "cpu")
    assert resolve_precision("auto", "cpu", cpu_bf16=False) == "fp32"
    assert resolve_precision("auto", "cpu", cpu_bf16=True) == "bf16"


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU flags from /proc/cpuinfo (Linux)")
def test_cpu_bf16_probe_agrees_with_the_cpu_flags() -> None:
    from ragtune.models import cpu_has_bf16

    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert cpu_has_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def _misleading_run(
    tiny_model,
    tmp_path: Path,
    patience: int,
    evals: int = 8,
    deadline=None,
    max_steps: int = 8,
    batch_size: int = 4,
    epochs: float = 1.5,
    resume: Path | None = None,
):
    """Fine-tune on questions paired with the wrong chunk while validation asks for the right one: training can
    only lower the validation score, so early stopping has something to stop."""
    from ragtune.config import Config
    from ragtune.training.trainer import fine_tune
    from ragtune.training.validation import Validation

    words = ("firewall", "router", "policy", "audit", "backup", "logging", "vendor", "incident")
    chunks = _chunks({f"c{i}": f"section {i} covers the {w} control in detail" for i, w in enumerate(words)})
    ids = list(chunks)
    # Each question is trained towards the next chunk over.
    pairs = [
        Pair(f"which section covers the {w} control?", ids[(i + 1) % len(ids)], "offline")
        for i, w in enumerate(words)
        for _ in range(4)
    ]
    validation = Validation(
        queries=[f"which section covers the {w} control?" for w in words],
        kinds=["term"] * len(words),
        relevant=ids,
        corpus_ids=ids,
        corpus_texts=[chunks[c].text for c in ids],
    )
    cfg = Config(
        docs=Path("d"),
        max_steps=max_steps,
        evals=evals,
        patience=patience,
        batch_size=batch_size,
        epochs=epochs,
        learning_rate=5e-3,
        precision="fp32",
        device="cpu",
        wise=False,
    )
    return fine_tune(
        tiny_model,
        pairs,
        chunks,
        cfg,
        tmp_path / "work",
        "cpu",
        validation=validation,
        deadline=deadline,
        resume=resume,
    )


def test_early_stopping_ends_training_patience_checkpoints_after_the_best(tiny_model, tmp_path) -> None:
    import copy

    full = _misleading_run(copy.deepcopy(tiny_model), tmp_path / "full", patience=0)
    # The control: without patience all 8 steps run, each one scored, and the score falls.
    assert full.steps == 8 and [s for s, _ in full.val_history] == list(range(1, 9))
    assert full.val_history[-1][1] < full.val_history[0][1]
    stopped = _misleading_run(tiny_model, tmp_path / "stopped", patience=2)
    scores = [s for _, s in stopped.val_history]
    best = scores.index(max(scores))
    # Stopped 2 checkpoints after the best one, none of them better, and the best one was kept.
    assert stopped.steps == stopped.val_history[-1][0] < 8
    assert len(scores) == best + 1 + 2 and max(scores[best + 1 :]) <= scores[best]
    assert stopped.best_step == stopped.val_history[best][0]


def test_a_deadline_ends_training_at_the_step_it_reaches_and_scores_that_step(tiny_model, tmp_path) -> None:
    import copy
    import time

    from ragtune.training.deadline import Deadline

    # Scored at steps 4 and 8 only; a deadline already reached ends training after its first step, which is
    # then saved and scored (the best checkpoint must know it), and the result says what was planned.
    cut = _misleading_run(
        copy.deepcopy(tiny_model), tmp_path / "cut", patience=0, evals=2, deadline=Deadline(time.perf_counter())
    )
    assert (cut.steps, cut.cut_from) == (1, 8)
    assert [s for s, _ in cut.val_history] == [1] and cut.best_step == 1
    # The control: a deadline an hour away changes nothing.
    later = Deadline(time.perf_counter() + 3600)
    full = _misleading_run(tiny_model, tmp_path / "full", patience=0, evals=2, deadline=later)
    assert (full.steps, full.cut_from, full.stretched_from) == (8, None, None)
    assert [s for s, _ in full.val_history] == [4, 8]


def test_training_faster_than_planned_takes_the_steps_that_fit_before_the_deadline(tiny_model, tmp_path) -> None:
    import copy
    import json
    import shutil
    import time

    from ragtune.training.deadline import Deadline

    # 8 rows in batches of 2: 4 steps an epoch; the 5 planned steps hold 2 epochs (8 steps).
    # An hour holds far more of the tiny model's steps: training stretches to the deadline's most, 7, once the
    # first checkpoint (step 3) has been written and its cost is known, and the last step is saved and scored.
    hour = time.perf_counter() + 3600

    def run(name: str, most: int, epochs: float = 10.0, **kw):
        deadline = Deadline(hour, most)
        model = copy.deepcopy(tiny_model)
        return _misleading_run(
            model, tmp_path / name, 0, evals=2, deadline=deadline, max_steps=5, batch_size=2, epochs=epochs, **kw
        )

    more = run("more", 7)
    assert (more.steps, more.stretched_from, more.cut_from) == (7, 5, None)
    assert [s for s, _ in more.val_history][0] == 3 and more.val_history[-1][0] == 7
    # Past the 2 epochs the 5 planned steps hold (the Trainer is set out for the most, 50), up to the 10 epochs
    # configured (40 steps), whatever the deadline allows; and no further than 1.5 configured epochs.
    capped = run("cap", 50)
    assert (capped.steps, capped.stretched_from, run("epochs", 50, epochs=1.5).steps) == (40, 5, 6)
    # The control: without a most (a plan that did not cut the steps), the planned steps.
    assert (run("same", 0).steps, run("same0", 0).stretched_from) == (5, None)
    # A checkpoint of stretched training (its state says 7 steps in all, as the Trainer writes it once stretched)
    # resumes to the stretched steps, not to the 5 planned.
    checkpoint = tmp_path / "again" / "work" / "checkpoint-3"
    shutil.copytree(tmp_path / "more" / "work" / "checkpoint-3", checkpoint)
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["max_steps"] == 5
    (checkpoint / "trainer_state.json").write_text(json.dumps(state | {"max_steps": 7}))
    again = run("again", 0, resume=checkpoint)
    assert (again.steps, again.stretched_from) == (7, 5)


def test_budgeted_training_that_does_not_stretch_ends_at_the_planned_step(
    tiny_model, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import time

    from ragtune.training import callbacks
    from ragtune.training.deadline import Deadline

    # Set out for the most a stretch may take (50), with a pace that holds no more than the 5 planned: training
    # ends at step 5, which is saved and scored, and its checkpoint says 5 steps in all (a resume ends there too).
    monkeypatch.setattr(callbacks, "stretched_steps", lambda planned, *rest: planned)
    deadline = Deadline(time.perf_counter() + 3600, 50)
    held = _misleading_run(tiny_model, tmp_path, 0, evals=2, deadline=deadline, max_steps=5, batch_size=2, epochs=10)
    assert (held.steps, held.stretched_from, held.cut_from) == (5, None, None)
    assert [s for s, _ in held.val_history] == [3, 5]
    state = json.loads((tmp_path / "work" / "checkpoint-5" / "trainer_state.json").read_text())
    assert (state["global_step"], state["max_steps"]) == (5, 5)


def test_training_set_out_for_more_steps_holds_to_the_planned_ones_from_its_first_step(tmp_path) -> None:
    import torch
    from transformers import TrainerControl, TrainerState, TrainingArguments, get_linear_schedule_with_warmup

    from ragtune.training.callbacks import StopAtDeadline
    from ragtune.training.deadline import Deadline

    # The Trainer is set out for the 50 steps a stretch may reach (its schedule, warm-up and checkpoints are
    # those of 50); the 10 planned are what training holds to until it stretches.
    args = TrainingArguments(
        output_dir=str(tmp_path), warmup_steps=0.1, save_steps=0.25, eval_strategy="steps", eval_steps=0.25
    )
    state = TrainerState()
    state.max_steps = 50
    state.compute_steps(args, 50)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=5, num_training_steps=50)
    StopAtDeadline(Deadline(0.0, 50), hold_to=10).on_train_begin(args, state, TrainerControl(), lr_scheduler=schedule)
    assert (state.max_steps, state.save_steps, state.eval_steps) == (10, 3, 3)
    rates = []
    for _ in range(10):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    # One warm-up step (a tenth of 10), then a linear fall to 0 at step 10, not at 50.
    assert rates[0] == pytest.approx(1.0) and rates[4] == pytest.approx(5 / 9) and rates[-1] == pytest.approx(0.0)
    # The control: nothing to hold to, nothing changes.
    state.max_steps = 50
    StopAtDeadline(Deadline(0.0, 50)).on_train_begin(args, state, TrainerControl(), lr_scheduler=schedule)
    assert state.max_steps == 50


def test_a_stretched_schedule_ends_its_learning_rate_at_the_new_last_step() -> None:
    import torch
    from transformers import get_linear_schedule_with_warmup

    from ragtune.training.callbacks import _stretch_schedule

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=2, num_training_steps=10)
    rates = []
    for step in range(20):
        if step == 4:
            assert _stretch_schedule(schedule, 20)
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    # Falling linearly from step 2's peak to 0 at step 20, not at 10: at step 10, (20 - 10) / (20 - 2).
    assert rates[9] == pytest.approx(10 / 18) and rates[-1] == pytest.approx(0.0) and rates[14] > 0
    # A schedule of another make is left alone, and says so.
    other = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3)
    assert not _stretch_schedule(other, 20)
