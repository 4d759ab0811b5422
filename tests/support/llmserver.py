"""An OpenAI-compatible chat-completions server for tests, served over real HTTP.

    POST /v1/chat/completions -> {"choices": [{"message": {"content": ...}, "finish_reason": "stop"}], "usage": ...}

Each test picks what it answers: `answer(prompt)` writes the message content
from the user prompt, and `script(...)` queues replies (an HTTP status, a
malformed body, a delay) that are served first, one per request, in order.

>>> with LLMServer(lambda prompt: "What is zero trust?") as llm:
...     llm.base_url.startswith("http://127.0.0.1:") and llm.base_url.endswith("/v1")
True
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.support.loopback import HungUpIsQuietServer, LoopbackServer, QuietJSONHandler

PATH = "/v1/chat/completions"


@dataclass
class Reply:
    """One scripted reply. `body` (raw bytes) wins over `content`; None content means: use `answer`."""

    status: int = 200
    content: str | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass
class Request:
    """What the server was asked: the JSON payload, the Authorization header, and when."""

    payload: dict[str, Any]
    auth: str | None
    at: float

    @property
    def prompt(self) -> str:
        return self.payload["messages"][-1]["content"]


def passage_of(prompt: str) -> str:
    """The chunk text inside a ragtune prompt (between the triple quotes)."""
    return prompt.split('"""')[1].strip()


def completion(content: str, prompt: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat-completions reply; token counts are word counts, enough to check they are summed."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(content.split())},
    }


class LLMState:
    """The answer function, the scripted replies, and every request received."""

    def __init__(self, answer: Callable[[str], str]) -> None:
        self.answer = answer
        self.replies: list[Reply] = []
        self.requests: list[Request] = []
        # Applied to every request that has no scripted reply (slow servers).
        self.delay = 0.0
        self.lock = threading.Lock()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


class _Handler(QuietJSONHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != PATH:
            return self.send_json(404, json.dumps({"error": {"message": f"no route for {self.path}"}}).encode())
        state = self.server.state
        payload = json.loads(body)
        with state.lock:
            state.requests.append(Request(payload, self.headers.get("Authorization"), time.monotonic()))
            reply = state.replies.pop(0) if state.replies else Reply(delay=state.delay)
        time.sleep(reply.delay)
        if reply.body is not None:
            return self.send_json(reply.status, reply.body, reply.headers)
        if reply.status != 200:
            error = {"error": {"message": f"injected failure {reply.status}", "type": "test"}}
            return self.send_json(reply.status, json.dumps(error).encode(), reply.headers)
        prompt = payload["messages"][-1]["content"]
        content = reply.content if reply.content is not None else state.answer(prompt)
        self.send_json(200, json.dumps(completion(content, prompt, reply.finish_reason)).encode(), reply.headers)


class _Server(HungUpIsQuietServer):
    state: LLMState


class LLMServer(LoopbackServer):
    """Runs the server on 127.0.0.1 at a free port, in a background thread."""

    httpd: _Server

    def __init__(self, answer: Callable[[str], str]) -> None:
        self.state = LLMState(answer)
        super().__init__(_Handler, "llmserver", _Server)
        self.httpd.state = self.state
        self.base_url = f"{self.url}/v1"

    def script(self, *replies: Reply) -> None:
        """Serve these replies first, one per request, before answering normally."""
        with self.state.lock:
            self.state.replies.extend(replies)

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.requests)
