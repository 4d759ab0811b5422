"""Nothing of the user's is deleted, overwritten or published by accident (issue 29, part A).

Each case is rebuilt from the issue's description: real folders under tmp_path, the
tiny model, the real CLI, and pushes over real HTTP to the loopback Hub (tests/support/hubserver.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ragtune.cli import main
from ragtune.records import Page
from tests.support.hubserver import HubServer
from tests.support.loopback import SilentServer
from tests.support.runs import pairs_args
from tests.test_cli import REPO, assert_one_error_line, run_args
from tests.test_hub import TOKEN, add_pairs, hubserver, make_run, model_files, silent  # noqa: F401
from tests.test_pairs import labelled_csv

SECRET = "s3cret-Passw0rd-42"
FAKE_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def user_folder(root: Path) -> dict[str, bytes]:
    """A folder of the user's own, laid out like a run (model/, checkpoints/, config.json ...); returns its files."""
    files = {
        "model/weights.bin": b"my own model",
        "checkpoints/step-9/state.pt": b"my checkpoint",
        "config.json": b'{"mine": true}',
        "metrics.json": b'{"mine": true}',
        "report.md": b"# my report\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def assert_untouched(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data, rel


def docs_folder(root: Path, nist_pages: list[Page]) -> Path:
    """Three text files of NIST pages: enough for a run to get past chunking."""
    root.mkdir(parents=True, exist_ok=True)
    text = {p.page: p.text for p in nist_pages}
    for i, numbers in enumerate([(5, 6), (7, 8), (9, 10)]):
        (root / f"part{i}.txt").write_text("\n\n".join(text[n] for n in numbers), encoding="utf-8")
    return root


# ---------------------------------------------------------------- --out: only what ragtune wrote itself


def test_out_equal_to_docs_is_refused_and_keeps_the_users_files(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 29, item 1: `--out DOCS` deleted DOCS/model/ and DOCS/checkpoints/, exit 0.
    docs = docs_folder(tmp_path / "docs", nist_pages)
    mine = user_folder(docs)
    assert main(run_args(docs, docs, tiny_model_dir, "--max-steps", "1", "--device", "cpu")) == 1
    line = assert_one_error_line(capsys.readouterr().err, "--out", "DOCS")
    assert "choose" in line
    assert_untouched(docs, mine)
    assert not (docs / "work").exists() and not (docs / "manifest.json").exists()


@pytest.mark.parametrize("where", ["out inside docs", "docs inside out"])
def test_out_and_docs_may_not_hold_one_another(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # Issue 29, item 18: a run inside DOCS trained on its own report.md at every rerun.
    if where == "out inside docs":
        docs = docs_folder(tmp_path / "docs", nist_pages)
        out = docs / "run"
    else:
        out = tmp_path / "run"
        docs = docs_folder(out / "docs", nist_pages)
    assert main(run_args(docs, out, tiny_model_dir, "--max-steps", "1", "--device", "cpu")) == 1
    assert_one_error_line(capsys.readouterr().err, "--out", "DOCS", "choose")
    assert not (out / "work").exists() and not (out / "manifest.json").exists()


def test_run_out_on_a_folder_that_is_not_a_run_is_refused(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 29, item 2: `run --out` an existing folder deleted its model/ and checkpoints/ and overwrote
    # its config.json, metrics.json and report.md.
    docs = docs_folder(tmp_path / "docs", nist_pages)
    out = tmp_path / "mine"
    mine = user_folder(out)
    assert main(run_args(docs, out, tiny_model_dir, "--max-steps", "1", "--device", "cpu")) == 1
    line = assert_one_error_line(capsys.readouterr().err, str(out), "ragtune did not write")
    assert "empty" in line or "new" in line
    assert_untouched(out, mine)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(mine)


def test_pairs_out_on_a_folder_that_is_not_a_run_is_refused(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 29, item 2: `pairs --out` an existing folder deleted its model/.
    out = tmp_path / "mine"
    mine = user_folder(out)
    code = main(pairs_args(labelled_csv(tmp_path), out, tiny_model_dir))
    assert code == 1
    assert_one_error_line(capsys.readouterr().err, str(out), "ragtune did not write")
    assert_untouched(out, mine)


def test_run_out_on_a_finished_pairs_folder_is_refused(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 29, item 2: `run --out` a finished `ragtune pairs` folder silently replaced its model.
    out = tmp_path / "pairs-run"
    code = main(pairs_args(labelled_csv(tmp_path), out, tiny_model_dir))
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    before = model_files(out)
    docs = docs_folder(tmp_path / "docs", nist_pages)
    assert main(run_args(docs, out, tiny_model_dir, "--max-steps", "1", "--device", "cpu")) == 1
    assert_one_error_line(capsys.readouterr().err, str(out), "`ragtune pairs`", "choose another --out")
    assert model_files(out) == before
    assert not (out / "work").exists() and not (out / "manifest.json").exists()


def test_a_pairs_run_interrupted_before_its_end_is_still_its_own(tmp_path: Path, tiny_model_dir: Path) -> None:
    # The rule must not lock a user out of their own half-finished run: the folder is marked as
    # ragtune's when the run claims it, before training, so the rerun is accepted.
    from ragtune.rundir import claim_out_dir, run_kind

    out = tmp_path / "run"
    claim_out_dir(out, "pairs")
    (out / "trainer.tmp").mkdir()
    assert run_kind(out) == "pairs"
    claim_out_dir(out, "pairs")  # accepted again
    with pytest.raises(Exception, match="`ragtune pairs`"):
        claim_out_dir(out, "run")


def test_reading_docs_skips_ragtune_run_folders_inside_it(tmp_path: Path, nist_pages: list[Page]) -> None:
    # Issue 29, item 18: an older layout with a run inside DOCS trained on its own report.md.
    from ragtune.extract import extract_folder

    docs = docs_folder(tmp_path / "docs", nist_pages)
    old = docs / "runs" / "latest"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text(json.dumps({"ragtune_manifest": 2, "ragtune_version": "0.3.0", "stages": {}}))
    (old / "report.md").write_text("# ragtune report\n\nhit@5 went from 0.41 to 0.57 on held-out questions.\n")
    pairs = docs / "skills-model"
    pairs.mkdir()
    (pairs / "run.json").write_text(json.dumps({"ragtune": "pairs-run", "version": 1}))
    (pairs / "eval.md").write_text("pearson spearman correlations of the pairs run\n")
    # A folder of the user's that merely holds a manifest.json of its own is still read.
    web = docs / "site"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my web app"}')
    (web / "notes.md").write_text("The web app keeps its notes here.\n")

    result = extract_folder(docs)
    sources = {p.source for p in result.pages}
    assert sources == {"part0.txt", "part1.txt", "part2.txt", "site/notes.md"}
    skipped = result.skipped.to_dict()
    listed = [item for items in skipped.get("examples", {}).values() for item in items]
    assert any("runs/latest" in item for item in listed), skipped
    assert any("skills-model" in item for item in listed), skipped


def test_export_never_overwrites_a_file_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same rule for the one file a command writes where the user says: `export --llamaindex FILE`
    # replaced whatever FILE was.
    run = add_pairs(make_run(tmp_path))
    mine = tmp_path / "settings.json"
    mine.write_text('{"theme": "dark"}', encoding="utf-8")
    assert main(["export", str(run), "--llamaindex", str(mine)]) == 1
    assert_one_error_line(capsys.readouterr().err, str(mine), "ragtune did not write", "new file name")
    assert mine.read_text(encoding="utf-8") == '{"theme": "dark"}'
    # An earlier export is replaced, as a rerun should.
    earlier = tmp_path / "dataset.json"
    assert main(["export", str(run), "--llamaindex", str(earlier)]) == 0
    earlier.write_text(earlier.read_text(encoding="utf-8").replace("zero trust", "ZT"), encoding="utf-8")
    assert main(["export", str(run), "--llamaindex", str(earlier)]) == 0
    assert "zero trust" in earlier.read_text(encoding="utf-8")


# ---------------------------------------------------------------- push: only the model folder, no secrets


def test_push_never_follows_a_symlink_out_of_the_model_folder(
    hubserver: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 29, item 3: `push` followed a symlink in model/ and uploaded the fake SSH key it pointed to.
    run = make_run(tmp_path)
    private = tmp_path / "home" / ".ssh"
    private.mkdir(parents=True)
    key = b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n"
    (private / "id_ed25519").write_bytes(key)
    (run / "model" / "id_ed25519").symlink_to(private / "id_ed25519")
    (run / "model" / "dotssh").symlink_to(private, target_is_directory=True)
    # A link that stays inside model/ goes up as the file it names.
    (run / "model" / "alias.json").symlink_to(run / "model" / "config.json")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", str(run), "alice/minilm", "--dry-run"]) == 0
    dry = capsys.readouterr()
    assert "  id_ed25519" not in dry.out and "dotssh" not in dry.out
    assert "2 symbolic links" in dry.err
    assert main(["push", str(run), "alice/minilm"]) == 0
    pushed = capsys.readouterr()
    uploaded = hubserver.state.repos["alice/minilm"].files
    assert not any(key in data for data in uploaded.values())
    assert "id_ed25519" not in uploaded and not any(name.startswith("dotssh") for name in uploaded)
    assert {"config.json", "model.safetensors", "1_Pooling/config.json"} <= set(uploaded)
    assert uploaded["alias.json"] == (run / "model" / "config.json").read_bytes()
    assert "2 symbolic links" in pushed.err


def test_a_card_linked_out_of_the_model_folder_is_not_read_into_the_upload(
    hubserver: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 29, item 3, by another road: with --with-data and no card.json, model/README.md was read
    # through its link and uploaded as the card.
    run = add_pairs(make_run(tmp_path))
    secret = tmp_path / "notes.md"
    secret.write_text("my private notes: the safe's code is 4711\n", encoding="utf-8")
    (run / "model" / "README.md").unlink()
    (run / "model" / "README.md").symlink_to(secret)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", str(run), "alice/minilm", "--with-data"]) == 0
    uploaded = hubserver.state.repos["alice/minilm"].files
    assert b"4711" not in uploaded["README.md"]
    assert b"alice/minilm-pairs" in uploaded["README.md"]


def test_a_model_folder_that_is_itself_a_link_is_refused(
    hubserver: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = make_run(tmp_path)
    home = tmp_path / "home"
    (run / "model").rename(home)
    (run / "model").symlink_to(home, target_is_directory=True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", str(run), "alice/minilm"]) == 1
    assert_one_error_line(capsys.readouterr().err, "symbolic link", "copy the model folder")
    assert sum(hubserver.state.hits.values()) == 0


@pytest.mark.parametrize("repo_id", [f"alice/{FAKE_TOKEN}", FAKE_TOKEN, f"{FAKE_TOKEN}/minilm"])
def test_a_token_pasted_as_the_repo_id_is_refused_before_any_request_and_never_shown(
    hubserver: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    repo_id: str,
) -> None:
    # Issue 29, item 4: `alice/hf_...` was pushed as a public repo named after the token; a bare one was echoed.
    run = make_run(tmp_path)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for extra in ([], ["--dry-run"]):
        assert main(["push", str(run), repo_id, *extra]) == 1
        captured = capsys.readouterr()
        line = assert_one_error_line(captured.err, "token")
        assert FAKE_TOKEN not in captured.out + captured.err
        assert FAKE_TOKEN[3:12] not in line
    assert sum(hubserver.state.hits.values()) == 0 and not hubserver.state.repos


@pytest.mark.parametrize("repo_id", [f"alice/{FAKE_TOKEN}", "not a repo id", "alice/minilm/extra"])
def test_run_push_with_a_bad_repo_id_fails_before_any_work(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], repo_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 29, item 21: the bad repo id was found only after the whole run, with advice to pass a --force
    # that `run` rejects.
    docs = docs_folder(tmp_path / "docs", nist_pages)
    out = tmp_path / "run"
    assert main(run_args(docs, out, tiny_model_dir, "--push", repo_id)) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    line = assert_one_error_line(err, "--push")
    assert "--force" not in line and FAKE_TOKEN not in err
    assert not out.exists()


@pytest.mark.parametrize(("token", "says"), [(None, "no Hugging Face token"), (TOKEN + "\n", "line break")])
def test_run_push_without_a_usable_token_fails_before_any_work(
    hubserver: HubServer,
    tmp_path: Path,
    tiny_model_dir: Path,
    nist_pages: list[Page],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    says: str,
) -> None:
    # Issue 29, item 21, for the token: a push that cannot happen must not wait for the whole run to say so.
    if token is not None:
        monkeypatch.setenv("HF_TOKEN", token)
    docs = docs_folder(tmp_path / "docs", nist_pages)
    out = tmp_path / "run"
    assert main(run_args(docs, out, tiny_model_dir, "--push", "alice/minilm", "--max-steps", "1")) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert_one_error_line(err, says)
    assert not out.exists()


def test_run_push_of_a_model_that_did_not_improve_names_a_command_that_exists(
    hubserver: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 29, item 21: `run --push` advised `--force`, which `run` rejects; the advice is `ragtune push ... --force`.
    from ragtune.cli import _push

    run = make_run(tmp_path, improved=False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(Exception) as caught:
        _push(run, "alice/minilm", private=False, dry_run=False, force=False, from_run=True)
    assert f"ragtune push {run} alice/minilm --force" in str(caught.value)
    assert sum(hubserver.state.hits.values()) == 0


def test_run_push_to_a_silent_hub_advises_no_flag_run_lacks(
    silent: SilentServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 29, item 21, the same for the timeout: `run` has no --timeout, so its push says RAGTUNE_HUB_TIMEOUT only.
    from ragtune import hub
    from ragtune.cli import _push

    monkeypatch.setattr(hub.calls, "MAX_BACKOFF_S", 0.01)
    monkeypatch.setenv("RAGTUNE_HUB_TIMEOUT", "0.3")
    with pytest.raises(hub.HubError) as caught:
        _push(make_run(tmp_path), "alice/minilm", private=False, dry_run=False, force=False, from_run=True)
    assert "no progress for 0.3 s" in str(caught.value)
    assert "RAGTUNE_HUB_TIMEOUT" in str(caught.value) and "--timeout" not in str(caught.value)


# ---------------------------------------------------------------- credentials: redacted everywhere


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{SECRET}@127.0.0.1:9/v1",
        f"http://127.0.0.1:9/v1?key={SECRET}",
        f"http://127.0.0.1:9/v1?api_token={SECRET}&x=1",
    ],
)
def test_credentials_in_the_llm_url_are_never_printed_nor_written(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str], url: str
) -> None:
    # Issue 29, item 5: `user:password@` and `?key=` were printed in the error line and written to config.json.
    docs = docs_folder(tmp_path / "docs", nist_pages)
    out = tmp_path / "run"
    code = main(
        run_args(
            docs,
            out,
            tiny_model_dir,
            "--generator",
            "openai",
            "--llm-model",
            "m",
            "--llm-retries",
            "0",
            "--llm-timeout",
            "2",
            "--llm-base-url",
            url,
            "--device",
            "cpu",
        )
    )
    captured = capsys.readouterr()
    assert code == 1
    line = assert_one_error_line(captured.err, "127.0.0.1")
    assert "***" in line
    assert SECRET not in captured.out + captured.err
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in written)
    for p in written:
        assert SECRET.encode() not in p.read_bytes(), p


def test_credentials_in_a_rejected_llm_url_are_not_echoed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", str(tmp_path), "--llm-base-url", f"ftp://alice:{SECRET}@example.org/v1"]) == 1
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, "--llm-base-url", "ftp://")
    assert SECRET not in captured.err


@pytest.mark.parametrize(
    ("token", "says"),
    [(TOKEN + "\n", "line break"), (TOKEN + "\r\n", "line break"), (" ", "blank"), ("\t \t", "blank")],
)
def test_a_malformed_hf_token_is_one_clear_line(
    hubserver: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    says: str,
) -> None:
    # Issue 29, item 22: a token with CR/LF said "connection failed"; a token of one space turned every
    # space of the message into `***`.
    run = make_run(tmp_path)
    monkeypatch.setenv("HF_TOKEN", token)
    assert main(["push", str(run), "alice/minilm"]) == 1
    captured = capsys.readouterr()
    line = assert_one_error_line(captured.err, "HF_TOKEN", says)
    assert "***" not in line and " " in line
    assert TOKEN not in captured.err
    assert sum(hubserver.state.hits.values()) == 0


def test_redaction_masks_credentials_and_never_plain_spaces() -> None:
    from ragtune.redact import redact, redact_url

    assert redact_url(f"https://bob:{SECRET}@llm.example/v1?key={SECRET}&model=x") == (
        "https://bob:***@llm.example/v1?key=***&model=x"
    )
    assert redact_url("http://localhost:8000/v1") == "http://localhost:8000/v1"
    text = f"cannot reach http://bob:{SECRET}@llm.example/v1 (token {FAKE_TOKEN})"
    masked = redact(text, " ", "\t")
    assert SECRET not in masked and FAKE_TOKEN not in masked
    assert masked.startswith("cannot reach http://bob:***@llm.example/v1 (token ")
    assert redact("one two three", " ", "") == "one two three"


def test_log_lines_printed_by_the_cli_mask_credentials_too() -> None:
    # "Every printed line": a library's warning that quotes the URL it requested is printed as well.
    import subprocess
    import sys

    script = (
        "import logging\n"
        "from ragtune.cli import _quiet_libraries\n"
        "_quiet_libraries(['tok-SECRETVALUE'])\n"
        "logging.getLogger('huggingface_hub').warning('retrying POST %s', 'http://bob:pw-SECRET@127.0.0.1/api')\n"
        "logging.getLogger('ragtune').warning('the token tok-SECRETVALUE was refused')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert "pw-SECRET" not in ran.stderr and "tok-SECRETVALUE" not in ran.stderr
    assert "http://bob:***@127.0.0.1/api" in ran.stderr and "the token *** was refused" in ran.stderr
