"""A small Hugging Face Hub look-alike for tests, served over real HTTP.

It implements only what `HfApi.create_repo`, `HfApi.create_commit` and
`HfApi.upload_folder` call, for model and dataset repos, so the real
huggingface_hub client can push to it ({kind} is "models" or "datasets"):

    POST /api/repos/create                      -> {"url": ...}   (409 if it exists)
    GET  /api/{kind}/{ns}/{name}[/revision/r]   -> {"id", "sha", "siblings"}
    POST /api/validate-yaml                     -> {"errors": [], "warnings": []}
    POST /api/{kind}/{ns}/{name}/preupload/{r}  -> every file "regular" (inline base64)
    POST /api/{kind}/{ns}/{name}/commit/{r}     -> NDJSON in, {"commitUrl", "commitOid"} out
    GET  /api/whoami-v2                         -> {"name", "orgs"}

Answering "regular" for every file keeps the whole upload inside the commit
payload, so no LFS or Xet storage has to be faked.

>>> with HubServer(tokens={"hf_good": "alice"}) as hub:
...     hub.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import HungUpIsQuietServer, LoopbackServer, QuietJSONHandler

_REPO = r"^/api/(?P<kind>models|datasets)/(?P<repo>[^/]+/[^/]+)"
# Route name -> path pattern. Failure injection and request counts use these names
# (one name for both kinds of repo: a "commit" failure hits the next commit of either).
ROUTES: dict[str, tuple[str, re.Pattern[str]]] = {
    "create": ("POST", re.compile(r"^/api/repos/create$")),
    "validate": ("POST", re.compile(r"^/api/validate-yaml$")),
    "whoami": ("GET", re.compile(r"^/api/whoami-v2$")),
    "preupload": ("POST", re.compile(_REPO + r"/preupload/(?P<rev>[^/]+)$")),
    "commit": ("POST", re.compile(_REPO + r"/commit/(?P<rev>[^/]+)$")),
    "info": ("GET", re.compile(_REPO + r"(?:/revision/(?P<rev>[^/]+))?$")),
}
# URL path segment -> repo type, as create_repo's payload names it.
KINDS = {"models": "model", "datasets": "dataset"}

# The Hub sends this X-Error-Message for a bad token; huggingface_hub keys on it.
BAD_CREDENTIALS = "Invalid credentials in Authorization header"


def git_blob_oid(data: bytes) -> str:
    """The git sha1 of a blob, which the Hub reports as a regular file's oid.

    >>> git_blob_oid(b"")
    'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391'
    """
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """One model or dataset repo: its files and the oid of its latest commit."""

    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    sha: str = "0" * 40
    commits: int = 0


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": message}, {"X-Error-Message": message, **headers})


class HubState:
    """What the server knows: tokens, repos, and what it was asked.

    `tokens` maps a token to the user it authenticates; `orgs` maps a user to the
    organisations they may write to.
    """

    def __init__(self, tokens: dict[str, str], orgs: dict[str, list[str]] | None = None) -> None:
        self.tokens = tokens
        self.orgs = orgs or {}
        self.repos: dict[str, Repo] = {}  # model repos
        self.datasets: dict[str, Repo] = {}  # dataset repos: a separate namespace, as on the Hub
        self.hits: Counter[str] = Counter()
        self.unknown: list[str] = []  # "METHOD /path" of requests no route handles
        self.commit_messages: list[str] = []
        self._fail: dict[str, list[int]] = defaultdict(list)
        self.delay: dict[str, float] = {}
        self.lock = threading.Lock()

    def fail_next(self, route: str, *statuses: int) -> None:
        """Answer the next calls to `route` with these HTTP statuses, in order."""
        self._fail[route].extend(statuses)

    def pop_failure(self, route: str) -> int | None:
        queue = self._fail[route]
        return queue.pop(0) if queue else None

    def user(self, auth: str | None) -> str | None:
        if not auth or not auth.startswith("Bearer "):
            return None
        return self.tokens.get(auth.removeprefix("Bearer "))

    def can_write(self, user: str, namespace: str) -> bool:
        return namespace == user or namespace in self.orgs.get(user, [])

    def store(self, repo_type: str) -> dict[str, Repo]:
        """The repos of one type: "model" or "dataset"."""
        return self.datasets if repo_type == "dataset" else self.repos


def _handle(state: HubState, base_url: str, route: str, match: re.Match[str], auth: str | None, body: bytes) -> Reply:
    """Answer one request; the caller has already counted it and applied injected failures."""
    if route == "validate":
        return Reply(200, {"errors": [], "warnings": []})
    user = state.user(auth)
    if auth and user is None:
        return _error(401, BAD_CREDENTIALS)
    if route == "whoami":
        if user is None:
            return _error(401, BAD_CREDENTIALS)
        return Reply(200, {"name": user, "type": "user", "orgs": [{"name": o} for o in state.orgs.get(user, [])]})
    if route == "create":
        return _create(state, base_url, user, json.loads(body or b"{}"))

    repo_id = match["repo"]
    repo = state.store(KINDS[match["kind"]]).get(repo_id)
    if repo is None or (repo.private and user is None):
        return _error(404, "Repository not found", **{"X-Error-Code": "RepoNotFound"})
    if route == "info":
        siblings = [{"rfilename": name} for name in sorted(repo.files)]
        return Reply(200, {"id": repo_id, "sha": repo.sha, "private": repo.private, "siblings": siblings})
    if user is None:
        return _error(401, "You must be authenticated to write")
    if not state.can_write(user, repo_id.split("/")[0]):
        return _error(403, f"You don't have the rights to write to {repo_id}")
    if route == "preupload":
        files = json.loads(body)["files"]
        return Reply(200, {"files": [_preupload_entry(repo, f) for f in files], "commitOid": repo.sha})
    prefix = "datasets/" if match["kind"] == "datasets" else ""
    return _commit(state, f"{base_url}/{prefix}{repo_id}", repo_id, repo, body)


def _create(state: HubState, base_url: str, user: str | None, payload: dict[str, Any]) -> Reply:
    if user is None:
        return _error(401, "You must be authenticated to create a repo")
    namespace = payload.get("organization") or user
    repo_id = f"{namespace}/{payload['name']}"
    repo_type = payload.get("type", "model")
    if repo_type not in KINDS.values():
        return _error(400, f"this test server hosts only model and dataset repos, not {repo_type!r}")
    # The Hub's URLs put datasets under /datasets/.
    url = f"{base_url}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    if not state.can_write(user, namespace):
        return _error(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace!r}")
    repos = state.store(repo_type)
    if repo_id in repos:
        return Reply(409, {"error": f"You already created this {repo_type} repo", "url": url})
    repos[repo_id] = Repo(private=payload.get("visibility") == "private")
    return Reply(200, {"url": url, "name": repo_id})


def _preupload_entry(repo: Repo, info: dict[str, Any]) -> dict[str, Any]:
    # Everything is "regular" so content travels base64-inline in the commit;
    # the oid lets the client skip files that did not change.
    current = repo.files.get(info["path"])
    oid = git_blob_oid(current) if current is not None else None
    return {"path": info["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid}


def _commit(state: HubState, repo_url: str, repo_id: str, repo: Repo, body: bytes) -> Reply:
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    if not lines or lines[0].get("key") != "header":
        return _error(400, "commit payload must start with a header line")
    staged = dict(repo.files)
    for line in lines[1:]:
        key, value = line["key"], line["value"]
        if key == "file" and value.get("encoding") == "base64":
            staged[value["path"]] = base64.b64decode(value["content"])
        elif key == "deletedFile":
            staged.pop(value["path"], None)
        else:
            # LFS/Xet pointers would need a storage backend this server does not have.
            return _error(422, f"unsupported commit operation {key!r}")
    repo.files = staged
    repo.commits += 1
    repo.sha = hashlib.sha1(f"{repo_id}:{repo.commits}".encode()).hexdigest()
    state.commit_messages.append(lines[0]["value"]["summary"])
    return Reply(200, {"commitUrl": f"{repo_url}/commit/{repo.sha}", "commitOid": repo.sha, "success": True})


class _Handler(QuietJSONHandler):
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        state = self.server.state
        for name, (method, pattern) in ROUTES.items():  # noqa: B007 (name is used after the break)
            match = pattern.match(path)
            if method == self.command and match:
                break
        else:
            with state.lock:
                state.unknown.append(f"{self.command} {path}")
            return self._send(_error(404, f"no route for {self.command} {path}"))
        with state.lock:
            state.hits[name] += 1
            failure = state.pop_failure(name)
        time.sleep(state.delay.get(name, 0.0))
        if failure is not None:
            return self._send(_error(failure, f"injected failure {failure}"))
        with state.lock:
            reply = _handle(state, self.server.url, name, match, self.headers.get("Authorization"), body)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_json(reply.status, json.dumps(reply.body).encode(), reply.headers)


class _Server(HungUpIsQuietServer):
    state: HubState
    url: str


class HubServer(LoopbackServer):
    """Runs the fake Hub on 127.0.0.1 at a free port, in a background thread."""

    httpd: _Server

    def __init__(self, tokens: dict[str, str], orgs: dict[str, list[str]] | None = None) -> None:
        self.state = HubState(tokens, orgs)
        super().__init__(_Handler, "hubserver", _Server)
        self.httpd.state = self.state
        self.httpd.url = self.url
