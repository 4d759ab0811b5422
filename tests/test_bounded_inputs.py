"""Issue 29, part B: every input is bounded, and a damaged one ends in one line.

A server that trickles its reply, a YAML alias bomb, a huge file ragtune does not
read, a megabyte "word" of base64, file names that are not text, a link to a
device, token counts that are not numbers, and out-of-range flags: each is cut
off, counted or refused in one line, with real files, a real loopback server
and the tiny model.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from ragtune.cli import main
from ragtune import extract as ex
from ragtune.extract import describe_skips, extract_folder
from ragtune.generators.llm import OpenAIGenerator
from ragtune.records import Chunk, Page, read_jsonl
from test_cli import assert_one_error_line
from test_cli_errors import FAST, good_docs, run_args
from tests.llmserver import LLMServer, Reply
from tests.loopback import QuietJSONHandler

REPO = Path(__file__).resolve().parents[1]
CHUNKS = [Chunk(f"c{i}", "a.txt", (1,), f"Zero trust architecture number {i} checks every request.", 9)
          for i in range(2)]


def openai(base_url: str, timeout: float = 5.0) -> OpenAIGenerator:
    return OpenAIGenerator(base_url, "m", 2, concurrency=1, timeout=timeout, retries=0, seed=1, cache_dir=None,
                           backoff=0.01)


# --- the LLM client: a total deadline, and token counts that are not numbers ----------------


class _Trickle(QuietJSONHandler):
    """Answers with a whole, valid reply, one byte every 50 ms (about 5 s in all)."""

    sent_all = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = {"choices": [{"message": {"content": "What is zero trust?"}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
        body = json.dumps(reply).encode().ljust(100)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.05)
            self.sent_all.set()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: what the test wants


def test_llm_timeout_bounds_the_whole_reply_of_a_server_that_trickles() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        gen = openai(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=1.0)
        with pytest.raises(Exception) as raised:
            gen.generate(CHUNKS[:1], random.Random(0))
    finally:
        server.shutdown()
        server.server_close()
    assert "no complete reply within 1s (--llm-timeout)" in str(raised.value)
    # Cut off before the server got its last byte out, not after a read finally timed out.
    assert not _Trickle.sent_all.is_set()


@pytest.mark.parametrize(("usage", "completion_tokens"), [
    (b'{"prompt_tokens": "many", "completion_tokens": 4}', 4 + 4),
    (b'{"prompt_tokens": 3, "completion_tokens": Infinity}', 0 + 4),
], ids=["string", "infinity"])
def test_usage_that_is_not_a_token_count_is_counted_not_a_traceback(usage: bytes, completion_tokens: int) -> None:
    body = b'{"choices": [{"message": {"content": "What is zero trust?"}, "finish_reason": "stop"}], "usage": ' + usage + b"}"
    with LLMServer(lambda prompt: "Why check every request?") as llm:
        llm.script(Reply(body=body))
        gen = openai(llm.base_url)
        pairs = gen.generate(CHUNKS, random.Random(0))
    assert [p.query for p in pairs] == ["What is zero trust?", "Why check every request?"]
    assert gen.stats.unreadable_usage == 1
    assert "1 replies without token counts" in gen.stats.summary()
    # The readable counts are summed (the second reply's: its 4 words), the unreadable one is not.
    assert gen.stats.completion_tokens == completion_tokens
