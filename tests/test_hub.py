"""ragtune.hub against a local Hub look-alike, through the real huggingface_hub client.

Every push goes over real HTTP to tests/support/hubserver.py on 127.0.0.1; nothing here
can reach the real Hub (HF_ENDPOINT, HF_HOME and the token path all point at
the test's own server and tmp_path).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub import constants
from huggingface_hub.utils import _http

from ragtune import hub
from ragtune.cli import main
from ragtune.hub import HubError, card_with_dataset, plan_push, push
from ragtune.records import Chunk, Pair, write_jsonl
from tests.support.hubserver import HubServer
from tests.support.loopback import LoopbackServer, QuietJSONHandler, SilentServer
from tests.test_cli import assert_one_error_line

TOKEN = "hf_test_SECRET_0123456789"
CARD = "---\nlibrary_name: sentence-transformers\ntags:\n- ragtune\n---\n\n# alice/minilm\n\nFine-tuned.\n"


@pytest.fixture
def hubserver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """A fresh fake Hub per test; the environment points only at it."""
    with HubServer(tokens={TOKEN: "alice"}, orgs={"alice": ["ragtune-org"]}) as server:
        home = tmp_path / "hf_home"
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(home))
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        # huggingface_hub read these at import, before the env above existed.
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        # No user-agent telemetry lookups (GET /api/agent-harnesses) and no cache
        # written into the real HF_HOME.
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"))
        yield server


def make_run(root: Path, improved: bool | None = True) -> Path:
    """A run directory with a tiny stand-in model folder (no real weights needed)."""
    run = root / "run"
    model = run / "model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (model / "README.md").write_text(CARD)
    (model / "model.safetensors").write_bytes(os.urandom(4096))
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    if improved is not None:
        metrics = {"before": {"hit@5": 0.5}, "after": {"hit@5": 0.75 if improved else 0.4}, "improved": improved}
        (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def model_files(run: Path) -> dict[str, bytes]:
    model = run / "model"
    return {p.relative_to(model).as_posix(): p.read_bytes() for p in model.rglob("*") if p.is_file()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push_fast(run: Path, repo_id: str, **kwargs: Any) -> str:
    """push() with 3 attempts and millisecond backoff, so retry tests stay fast."""
    return push(run, repo_id, retries=2, backoff=0.01, **kwargs)


def test_push_uploads_every_file_in_one_commit(hubserver: HubServer, tmp_path: Path) -> None:
    run = make_run(tmp_path)

    url = push_fast(run, "alice/minilm", token=TOKEN)

    repo = hubserver.state.repos["alice/minilm"]
    assert repo.files == model_files(run)
    assert repo.files["README.md"].decode() == CARD
    assert url == f"{hubserver.url}/alice/minilm/commit/{repo.sha}"
    assert repo.commits == 1 and hubserver.state.commit_messages == [hub.COMMIT_MESSAGE]
    assert not repo.private
    assert hubserver.state.unknown == []


def test_push_creates_private_repo_in_an_org(hubserver: HubServer, tmp_path: Path) -> None:
    push_fast(make_run(tmp_path), "ragtune-org/minilm", private=True, token=TOKEN)

    assert hubserver.state.repos["ragtune-org/minilm"].private


def test_push_to_existing_repo_succeeds(hubserver: HubServer, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    push_fast(run, "alice/minilm", token=TOKEN)
    (run / "model" / "README.md").write_text(CARD + "\nSecond run.\n")

    push_fast(run, "alice/minilm", token=TOKEN)

    repo = hubserver.state.repos["alice/minilm"]
    assert repo.commits == 2
    assert repo.files["README.md"].decode().endswith("Second run.\n")
    assert hubserver.state.hits["create"] == 2  # the second create answered 409, which exist_ok absorbs


def test_token_comes_from_env_then_login_cache(
    hubserver: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    push_fast(make_run(tmp_path / "a"), "alice/from-env")

    monkeypatch.delenv("HF_TOKEN")
    Path(constants.HF_TOKEN_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(constants.HF_TOKEN_PATH).write_text(TOKEN)
    push_fast(make_run(tmp_path / "b"), "alice/from-cache")

    assert {"alice/from-env", "alice/from-cache"} <= set(hubserver.state.repos)


def test_missing_token_says_how_to_log_in(hubserver: HubServer, tmp_path: Path) -> None:
    with pytest.raises(HubError, match=r"^no Hugging Face token: set HF_TOKEN or run `hf auth login`$"):
        push_fast(make_run(tmp_path), "alice/minilm")
    assert sum(hubserver.state.hits.values()) == 0


def test_bad_token_is_named_but_never_shown(
    hubserver: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = "hf_wrong_SECRET_9876543210"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(HubError) as info:
        push_fast(make_run(tmp_path), "alice/minilm", token=bad)

    message = str(info.value)
    assert message.startswith("the Hub rejected the token (401 Unauthorized)")
    assert "HF_TOKEN" in message and "\n" not in message
    assert bad not in message and bad not in caplog.text
    assert hubserver.state.hits["create"] == 1  # a 401 is not retried


def test_no_write_access_to_namespace(hubserver: HubServer, tmp_path: Path) -> None:
    with pytest.raises(HubError, match=r"cannot write to the namespace 'bob' \(403 Forbidden\)"):
        push_fast(make_run(tmp_path), "bob/minilm", token=TOKEN)


def test_server_error_is_retried_then_succeeds(
    hubserver: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hubserver.state.fail_next("create", 500, 503)
    caplog.set_level(logging.WARNING, logger="ragtune.hub")

    push_fast(make_run(tmp_path), "alice/minilm", token=TOKEN)

    assert hubserver.state.hits["create"] == 3
    assert hubserver.state.repos["alice/minilm"].commits == 1
    assert "retrying" in caplog.text and TOKEN not in caplog.text


def test_persistent_server_error_gives_up_after_bounded_retries(hubserver: HubServer, tmp_path: Path) -> None:
    hubserver.state.fail_next("create", 502, 502, 502, 502)

    with pytest.raises(HubError, match=r"failed with HTTP 502 after 3 attempts: the Hub may be down"):
        push_fast(make_run(tmp_path), "alice/minilm", token=TOKEN)
    assert hubserver.state.hits["create"] == 3


@pytest.mark.parametrize(
    ("route", "statuses", "expected"),
    [
        ("commit", [409], r"^alice/minilm is busy or in conflict \(409\): another push may be in progress"),
        ("preupload", [404], r"^alice/minilm was not found on http://127\.0\.0\.1:\d+ \(404\)"),
        ("create", [429] * 3, r"is rate-limiting requests \(429\) after 3 attempts"),
    ],
)
def test_http_errors_become_one_line_messages(
    hubserver: HubServer, tmp_path: Path, route: str, statuses: list[int], expected: str
) -> None:
    hubserver.state.fail_next(route, *statuses)

    with pytest.raises(HubError, match=expected) as info:
        push_fast(make_run(tmp_path), "alice/minilm", token=TOKEN)
    assert "\n" not in str(info.value) and TOKEN not in str(info.value)


def test_unreachable_endpoint(hubserver: HubServer, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(HubError, match=rf"^cannot reach {endpoint} \(after 3 attempts\)"):
        push_fast(make_run(tmp_path), "alice/minilm", token=TOKEN, api=hub.get_api(endpoint))


def test_timeout_is_reported(hubserver: HubServer, tmp_path: Path) -> None:
    hubserver.state.delay["create"] = 1.0

    with pytest.raises(
        HubError,
        match=rf"^timed out talking to {hubserver.url} after 2 attempts \(no progress for "
        r"0\.2 s\): .* --timeout or RAGTUNE_HUB_TIMEOUT$",
    ):
        push(make_run(tmp_path), "alice/minilm", token=TOKEN, retries=1, backoff=0.01, timeout=0.2)
    assert hubserver.state.hits["create"] == 2


# --- servers that are not the Hub: silent, or answering HTML --------------------------------


@pytest.fixture
def silent(hubserver: HubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    """The hubserver fixture's isolated environment, with HF_ENDPOINT at a server that never answers."""
    with SilentServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


# Generous: a push that hangs would take forever, one that times out takes about a second.
BOUND_S = 30


def test_push_to_a_server_that_never_answers_times_out(silent: SilentServer, tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(
        HubError,
        match=rf"^timed out talking to {silent.url} after 2 attempts \(no progress for "
        r"0\.3 s\)",
    ):
        push(make_run(tmp_path), "alice/minilm", retries=1, backoff=0.01, timeout=0.3)
    assert time.monotonic() - start < BOUND_S
    assert silent.accepted >= 1  # it really connected, then waited for a reply that never came


def test_cli_push_to_a_silent_server_ends_with_one_error_line(
    silent: SilentServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(hub.calls, "MAX_BACKOFF_S", 0.01)  # the CLI's 4 attempts, without seconds of backoff between
    start = time.monotonic()

    assert main(["push", str(make_run(tmp_path)), "alice/minilm", "--timeout", "0.3"]) == 1

    assert time.monotonic() - start < BOUND_S
    assert_one_error_line(
        capsys.readouterr().err, f"timed out talking to {silent.url} after 4 attempts", "no progress for 0.3 s"
    )


def test_timeout_comes_from_the_environment(
    silent: SilentServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGTUNE_HUB_TIMEOUT", "0.3")
    start = time.monotonic()
    with pytest.raises(HubError, match=r"no progress for 0\.3 s"):
        push(make_run(tmp_path), "alice/minilm", retries=0)
    assert time.monotonic() - start < BOUND_S


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        ("inf", None, "the Hub timeout must be a number of seconds > 0, not inf"),
        ("nan", None, "the Hub timeout must be a number of seconds > 0, not nan"),
        ("0", None, "the Hub timeout must be a number of seconds > 0, not 0"),
        (None, "soon", "RAGTUNE_HUB_TIMEOUT must be a number of seconds > 0, not 'soon'"),
        (None, "-5", "RAGTUNE_HUB_TIMEOUT must be a number of seconds > 0, not -5"),
    ],
)
def test_bad_timeout_is_one_line_before_any_request(
    silent: SilentServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str | None,
    env: str | None,
    expected: str,
) -> None:
    if env is not None:
        monkeypatch.setenv("RAGTUNE_HUB_TIMEOUT", env)

    assert main(["push", str(make_run(tmp_path)), "alice/minilm", *(["--timeout", flag] if flag else [])]) == 1

    assert assert_one_error_line(capsys.readouterr().err) == f"ragtune: error: {expected}"
    assert silent.accepted == 0


def test_push_puts_huggingface_hubs_client_factory_back(hubserver: HubServer, tmp_path: Path) -> None:
    before = _http._GLOBAL_CLIENT_FACTORY

    push_fast(make_run(tmp_path), "alice/minilm", token=TOKEN, timeout=5)

    assert _http._GLOBAL_CLIENT_FACTORY is before
    # Other huggingface_hub users in this process get its own client again (timeout=None), not ours.
    assert _http.get_session().timeout.read is None


class _PortalHandler(QuietJSONHandler):
    """Answers every request 200 with a login page, as a captive portal or a misrouted proxy does."""

    hits = 0
    url = ""

    def do_GET(self) -> None:
        self._page()

    def do_POST(self) -> None:
        self._page()

    page = b"<!DOCTYPE html>\n<html><body><h1>Sign in to Guest Wi-Fi</h1></body></html>\n"
    content_type = "text/html; charset=utf-8"

    def _page(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits += 1
        self.send_json(200, self.page, {"Content-Type": self.content_type})


@pytest.fixture
def portal(hubserver: HubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_PortalHandler]]:
    """HF_ENDPOINT at a server that answers HTML; yields its handler class (url, hits)."""
    yield from _serve(_PortalHandler, monkeypatch)


class _WrongJSONHandler(_PortalHandler):
    """Answers every request 200 with JSON of another service: an object without the fields the Hub sends."""

    page = b'{"status": "ok", "items": []}'
    content_type = "application/json"


@pytest.fixture
def wrong_json(hubserver: HubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_PortalHandler]]:
    yield from _serve(_WrongJSONHandler, monkeypatch)


def _serve(base: type[_PortalHandler], monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_PortalHandler]]:
    handler = type("Handler", (base,), {"hits": 0})
    with LoopbackServer(handler) as server:
        handler.url = server.url
        monkeypatch.setenv("HF_ENDPOINT", handler.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield handler


def test_html_reply_says_the_endpoint_is_not_the_hub(portal: type[_PortalHandler], tmp_path: Path) -> None:
    with pytest.raises(
        HubError,
        match=rf"^{portal.url} answered with an HTML page, not the Hub API: "
        "check HF_ENDPOINT",
    ):
        push_fast(make_run(tmp_path), "alice/minilm")
    assert portal.hits == 1  # not retried: asking again gets the same page


def test_json_of_another_service_is_one_error_line(
    wrong_json: type[_PortalHandler], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(HubError, match=rf"^{wrong_json.url} answered with JSON that is not a Hub API reply \("):
        push_fast(make_run(tmp_path), "alice/minilm")
    assert wrong_json.hits == 1
    assert main(["push", str(make_run(tmp_path / "again")), "alice/minilm", "--timeout", "5"]) == 1
    assert_one_error_line(
        capsys.readouterr().err, f"{wrong_json.url} answered with JSON that is not a Hub API reply", "HF_ENDPOINT"
    )


def test_cli_html_reply_is_one_error_line(
    portal: type[_PortalHandler], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", str(make_run(tmp_path)), "alice/minilm", "--timeout", "5"]) == 1

    assert_one_error_line(
        capsys.readouterr().err, f"{portal.url} answered with an HTML page, not the Hub API", "HF_ENDPOINT", "proxy"
    )


def test_refuses_a_model_that_did_not_improve(hubserver: HubServer, tmp_path: Path) -> None:
    run = make_run(tmp_path, improved=False)

    with pytest.raises(
        HubError, match=r"^not pushing: metrics.json does not show .* \(improved=false\); pass --force to push anyway$"
    ):
        push_fast(run, "alice/minilm", token=TOKEN)
    assert sum(hubserver.state.hits.values()) == 0

    push_fast(run, "alice/minilm", token=TOKEN, force=True)
    assert hubserver.state.repos["alice/minilm"].files == model_files(run)


def test_refuses_a_run_without_metrics(hubserver: HubServer, tmp_path: Path) -> None:
    with pytest.raises(HubError, match=r"metrics.json is missing.*pass --force"):
        push_fast(make_run(tmp_path, improved=None), "alice/minilm", token=TOKEN)


def test_dry_run_plan_lists_files_without_network(hubserver: HubServer, tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "model" / ".git").mkdir()
    (run / "model" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # upload_folder skips .git

    plan = plan_push(run, "alice/minilm", private=True)

    expected = sorted((name, len(data)) for name, data in model_files(run).items() if not name.startswith(".git"))
    assert sorted(plan.files) == expected
    assert plan.total_bytes == sum(size for _, size in expected)
    assert (plan.repo_id, plan.private) == ("alice/minilm", True)
    assert sum(hubserver.state.hits.values()) == 0


@pytest.mark.parametrize("repo_id", ["minilm", "a/b/c", "alice/", "/minilm", "alice/mini lm", "alice/-x", "al--ice/x"])
def test_plan_rejects_malformed_repo_ids(tmp_path: Path, repo_id: str) -> None:
    with pytest.raises(HubError, match=r"must look like 'namespace/name'"):
        plan_push(make_run(tmp_path), repo_id)


def test_plan_needs_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(HubError, match=r"^no model to push: .*model does not exist"):
        plan_push(tmp_path / "empty-run", "alice/minilm")


def test_get_api_reads_hf_endpoint_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example:1234/")
    assert hub.get_api().endpoint == "http://hub.example:1234"
    assert hub.get_api("http://other:1").endpoint == "http://other:1"


# --- --with-data: the pairs as a dataset repo ---------------------------------------------

CHUNKS = [
    Chunk("c-1", "a.pdf", (3,), "Zero trust assumes no implicit trust.", 7),
    Chunk("c-2", "b.pdf", (1, 2), "Incident response plans name an owner — «always».", 9),
    Chunk("c-3", "a.pdf", (4,), "Never asked about.", 3),
]
TRAIN = [
    Pair("what is zero trust?", "c-1", "offline", "keyphrase"),
    Pair("who owns incidents?", "c-2", "offline", "cloze"),
]
EVAL = [Pair("what does zero trust assume?", "c-1", "offline", "keyphrase")]


def add_pairs(run: Path) -> Path:
    write_jsonl(run / "chunks.jsonl", CHUNKS, Chunk)
    write_jsonl(run / "pairs_train.jsonl", TRAIN, Pair)
    write_jsonl(run / "pairs_eval.jsonl", EVAL, Pair)
    return run


def rows(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def front_matter(card: bytes) -> dict[str, Any]:
    text = card.decode()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_with_data_pushes_the_pairs_then_the_model_with_a_linked_card(hubserver: HubServer, tmp_path: Path) -> None:
    run = add_pairs(make_run(tmp_path))

    url = push_fast(run, "alice/minilm", token=TOKEN, with_data=True)

    state = hubserver.state
    data = state.datasets["alice/minilm-pairs"]
    assert sorted(data.files) == ["README.md", "eval.jsonl", "train.jsonl"]
    assert rows(data.files["train.jsonl"]) == [
        {
            "query": "what is zero trust?",
            "chunk_id": "c-1",
            "chunk_text": CHUNKS[0].text,
            "source": "a.pdf",
            "pages": [3],
            "kind": "keyphrase",
        },
        {
            "query": "who owns incidents?",
            "chunk_id": "c-2",
            "chunk_text": CHUNKS[1].text,
            "source": "b.pdf",
            "pages": [1, 2],
            "kind": "cloze",
        },
    ]
    assert rows(data.files["eval.jsonl"]) == [
        {
            "query": "what does zero trust assume?",
            "chunk_id": "c-1",
            "chunk_text": CHUNKS[0].text,
            "source": "a.pdf",
            "pages": [3],
            "kind": "keyphrase",
        },
    ]
    meta = front_matter(data.files["README.md"])
    assert {"sentence-similarity", "text-retrieval"} <= set(meta["task_categories"]) and "license" not in meta
    readme = data.files["README.md"].decode()
    assert "Synthetic questions written by ragtune's `offline` generator over the source documents" in readme
    assert "Source documents: a.pdf, b.pdf" in readme

    # Dataset first, then the model; each in one commit.
    assert state.commit_messages == [hub.DATASET_COMMIT_MESSAGE, hub.COMMIT_MESSAGE]
    model = state.repos["alice/minilm"]
    assert model.commits == 1 and data.commits == 1 and not model.private and not data.private
    assert url == f"{hubserver.url}/alice/minilm/commit/{model.sha}"
    on_disk = model_files(run)
    assert {k: v for k, v in model.files.items() if k != "README.md"} == {
        k: v for k, v in on_disk.items() if k != "README.md"
    }
    # The Hub's card lists the dataset and keeps everything else; the local card is untouched.
    assert front_matter(model.files["README.md"]) == front_matter(CARD.encode()) | {"datasets": ["alice/minilm-pairs"]}
    assert model.files["README.md"].decode().endswith(CARD.split("---\n", 2)[2])
    assert on_disk["README.md"].decode() == CARD
    assert "alice/minilm-pairs" not in state.repos and "alice/minilm" not in state.datasets
    assert state.unknown == []


def test_with_data_private_repos_in_an_org(hubserver: HubServer, tmp_path: Path) -> None:
    push_fast(add_pairs(make_run(tmp_path)), "ragtune-org/minilm", private=True, token=TOKEN, with_data=True)

    assert hubserver.state.datasets["ragtune-org/minilm-pairs"].private
    assert hubserver.state.repos["ragtune-org/minilm"].private


def test_with_data_failure_names_the_dataset_and_pushes_no_model(hubserver: HubServer, tmp_path: Path) -> None:
    hubserver.state.fail_next("commit", 409)

    with pytest.raises(HubError, match=r"^alice/minilm-pairs is busy or in conflict \(409\)"):
        push_fast(add_pairs(make_run(tmp_path)), "alice/minilm", token=TOKEN, with_data=True)
    assert "alice/minilm" not in hubserver.state.repos


def test_with_data_retries_the_dataset_commit(hubserver: HubServer, tmp_path: Path) -> None:
    hubserver.state.fail_next("commit", 503)

    push_fast(add_pairs(make_run(tmp_path)), "alice/minilm", token=TOKEN, with_data=True)

    assert hubserver.state.hits["commit"] == 3
    assert hubserver.state.datasets["alice/minilm-pairs"].commits == 1
    assert hubserver.state.repos["alice/minilm"].commits == 1


def test_with_data_needs_the_pairs(hubserver: HubServer, tmp_path: Path) -> None:
    run = make_run(tmp_path)

    with pytest.raises(HubError, match=r"^--with-data needs chunks.jsonl, pairs_train.jsonl, pairs_test.jsonl in "):
        push_fast(run, "alice/minilm", token=TOKEN, with_data=True)
    assert sum(hubserver.state.hits.values()) == 0


def test_dry_run_with_data_plans_both_repos(hubserver: HubServer, tmp_path: Path) -> None:
    run = add_pairs(make_run(tmp_path))

    plan = plan_push(run, "alice/minilm", with_data=True)

    assert plan.dataset_repo_id == "alice/minilm-pairs"
    assert plan.dataset_files == [(n, len(d)) for n, d in hub.dataset_files(run, "alice/minilm").items()]
    assert [n for n, _ in plan.dataset_files] == ["README.md", "train.jsonl", "eval.jsonl"]
    card = card_with_dataset(CARD, "alice/minilm-pairs").encode()
    sizes = {n: len(d) for n, d in model_files(run).items()} | {"README.md": len(card)}
    assert sorted(plan.files) == sorted(sizes.items()) and plan.total_bytes == sum(sizes.values())
    assert sum(hubserver.state.hits.values()) == 0


def test_cli_dry_run_with_data_lists_both_repos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = add_pairs(make_run(tmp_path))

    assert main(["push", str(run), "alice/minilm", "--dry-run", "--with-data", "--private"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Would upload 3 files (")
    assert out[0].endswith(" to private dataset repo alice/minilm-pairs:")
    assert [line.split()[0] for line in out[1:4]] == ["README.md", "train.jsonl", "eval.jsonl"]
    assert out[4].startswith(f"Would upload {len(model_files(run))} files (")
    assert out[4].endswith(" to private model repo alice/minilm, its card listing alice/minilm-pairs:")
    assert sorted(line.split()[0] for line in out[5:-1]) == sorted(model_files(run))
    assert out[-1].startswith("Leaving this machine for alice/minilm: the model weights")


@pytest.mark.parametrize(
    ("card", "expected_front"),
    [
        ("# no front matter\n", "datasets:\n- a/b-pairs\n"),
        ("---\ndatasets:\n- other/set\ntags:\n- x\n---\nbody\n", "datasets:\n- other/set\n- a/b-pairs\ntags:\n- x\n"),
        ("---\ntags: [x]\ndatasets: [a/b-pairs]\n---\nbody\n", "datasets:\n- a/b-pairs\ntags: [x]\n"),
    ],
)
def test_card_with_dataset_merges_into_front_matter(card: str, expected_front: str) -> None:
    result = card_with_dataset(card, "a/b-pairs")
    body = card.split("---\n", 2)[2] if card.startswith("---\n") else card
    assert result == "---\n" + expected_front + "---\n" + body
