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
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_cli import assert_one_error_line

from ragtune import extract as ex
from ragtune.cli import main
from ragtune.extract import describe_skips, extract_folder
from ragtune.generators.openai import OpenAIGenerator
from ragtune.records import Chunk, Page, read_jsonl
from tests.support.llmserver import LLMServer, Reply
from tests.support.loopback import LoopbackServer, QuietJSONHandler
from tests.support.runs import good_docs, run_args

REPO = Path(__file__).resolve().parents[1]
CHUNKS = [
    Chunk(f"c{i}", "a.txt", (1,), f"Zero trust architecture number {i} checks every request.", 9) for i in range(2)
]


def openai(base_url: str, timeout: float = 5.0) -> OpenAIGenerator:
    return OpenAIGenerator(
        base_url, "m", 2, concurrency=1, timeout=timeout, retries=0, seed=1, cache_dir=None, backoff=0.01
    )


# --- the LLM client: a total deadline, and token counts that are not numbers ----------------


class _Trickle(QuietJSONHandler):
    """Answers with a whole, valid reply, one byte every 50 ms (about 5 s in all), until the server's `stop` is set."""

    sent_all = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = {
            "choices": [{"message": {"content": "What is zero trust?"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        }
        body = json.dumps(reply).encode().ljust(100)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                if self.server.stop.is_set():  # type: ignore[attr-defined]
                    return
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
            self.sent_all.set()
        except OSError:
            pass  # the client hung up (a broken pipe, a reset, or an SSL EOF over https): what the test wants


def _tls_context(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 (made by the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_llm_timeout_bounds_the_whole_reply_of_a_server_that_trickles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    _Trickle.sent_all.clear()
    server = LoopbackServer(_Trickle)
    # Set when the test ends, so the handler thread never outlives its test and prints into the next one.
    server.httpd.stop = threading.Event()  # type: ignore[attr-defined]
    if scheme == "https":
        server.httpd.socket = _tls_context(tmp_path).wrap_socket(server.httpd.socket, server_side=True)
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # the client trusts the test certificate
    with server:
        gen = openai(f"{scheme}://127.0.0.1:{server.httpd.server_address[1]}/v1", timeout=1.0)
        try:
            with pytest.raises(Exception) as raised:
                gen.generate(CHUNKS[:1], random.Random(0))
        finally:
            server.httpd.stop.set()  # type: ignore[attr-defined]
    assert "no complete reply within 1s (--llm-timeout)" in str(raised.value)
    # Cut off before the server got its last byte out, not after a read finally timed out.
    assert not _Trickle.sent_all.is_set()


@pytest.mark.parametrize(
    ("usage", "completion_tokens"),
    [
        (b'{"prompt_tokens": "many", "completion_tokens": 4}', 4 + 4),
        (b'{"prompt_tokens": 3, "completion_tokens": Infinity}', 0 + 4),
    ],
    ids=["string", "infinity"],
)
def test_usage_that_is_not_a_token_count_is_counted_not_a_traceback(usage: bytes, completion_tokens: int) -> None:
    body = (
        b'{"choices": [{"message": {"content": "What is zero trust?"}, "finish_reason": "stop"}], "usage": '
        + usage
        + b"}"
    )
    with LLMServer(lambda prompt: "Why check every request?") as llm:
        llm.script(Reply(body=body))
        gen = openai(llm.base_url)
        pairs = gen.generate(CHUNKS, random.Random(0))
    assert [p.query for p in pairs] == ["What is zero trust?", "Why check every request?"]
    assert gen.stats.unreadable_usage == 1
    assert "1 replies without token counts" in gen.stats.summary()
    # The readable counts are summed (the second reply's: its 4 words), the unreadable one is not.
    assert gen.stats.completion_tokens == completion_tokens


# --- the config file: no alias expansion, a size cap ----------------------------------------


def _alias_bomb(depth: int) -> str:
    """`depth` levels of lists of 9 aliases each: 9**depth items from a few hundred bytes."""
    names = "abcdefghij"[:depth]
    levels = ["&a [" + ",".join(['"lol"'] * 9) + "]"]
    levels += [f"&{n} [" + ",".join([f"*{prev}"] * 9) + "]" for prev, n in zip(names, names[1:])]
    return "matryoshka_dims: [" + ", ".join(levels) + "]\n"


def test_yaml_alias_bomb_in_config_is_one_short_line(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Depth 7 (4.8 million items) is enough to show the bug without exhausting the machine.
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb(7), encoding="utf-8")
    assert path.stat().st_size < 400
    code = main(run_args(tmp_path / "docs", tmp_path / "run", tiny_model_dir, "--config", str(path)))
    err = capsys.readouterr().err
    assert code == 1
    assert len(err) < 400, f"{len(err):,} characters"
    assert_one_error_line(
        err,
        f"config file {path}: not valid YAML: line 1, column ",
        "aliases (*name) are not allowed here; write the value out",
    )


def test_a_huge_config_file_is_refused_before_it_is_read(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.toml"
    path.write_text("# padding\n" * 200_000, encoding="utf-8")  # 2 MB of comments: valid, and empty
    code = main(run_args(tmp_path / "docs", tmp_path / "run", tiny_model_dir, "--config", str(path)))
    assert code == 1
    assert_one_error_line(
        capsys.readouterr().err, f"config file {path}: is 2,000,000 bytes; a settings file is at most 1,048,576"
    )


def test_a_long_wrong_value_in_a_config_file_is_cut_short(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("ks = [" + ", ".join(['"x"'] * 50_000) + "]\n", encoding="utf-8")
    assert main(run_args(tmp_path / "docs", tmp_path / "run", tiny_model_dir, "--config", str(path))) == 1
    line = assert_one_error_line(capsys.readouterr().err, "ks must be a list of whole numbers, not ['x', ")
    assert len(line) < 300


# --- fingerprints: files ragtune does not read are not read -----------------------------------

_PEAK = """
import resource, sys
from pathlib import Path
from ragtune.config import Config
from ragtune.pipeline import _docs_fingerprint
cfg = Config(docs=Path(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fingerprint = _docs_fingerprint(cfg)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, fingerprint)
"""


def _fingerprint_growth(docs: Path) -> tuple[int, str]:
    """How many MB the peak memory grew while fingerprinting `docs`, in a fresh process, and the fingerprint."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(docs)], capture_output=True, text=True, env=env, check=True
    ).stdout
    grown, fingerprint = out.split(" ", 1)
    return int(grown), fingerprint


def test_a_huge_unsupported_file_is_fingerprinted_without_reading_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("Zero trust checks every request. " * 50, encoding="utf-8")
    video = docs / "talk.mp4"
    with video.open("wb") as f:  # sparse: 512 MB on paper, nothing on disk
        f.truncate(512 << 20)
    grown, fingerprint = _fingerprint_growth(docs)
    assert grown < 64, f"peak memory grew {grown} MB"
    # A changed video still changes the fingerprint (by its size and modification time).
    os.utime(video, ns=(1, 1))
    assert _fingerprint_growth(docs)[1] != fingerprint


# --- extraction: junk "words", names that are not text, links to devices ------------------------


def test_a_megabyte_run_of_base64_is_dropped_with_a_counted_warning(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    prose = "Zero trust architecture checks every request before it reaches a resource. " * 20
    blob = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg" * 20_000
    # A reference's link with a long slug, as in NIST AI 600-1's: text, kept whole.
    link = "https://www.researchgate.net/publication/374505266_" + "Ethical_Tensions_in_Human" * 5
    (docs / "page.txt").write_text(
        f"{prose}\n\n![image](data:image/png;base64,{blob})\n\n{prose}\n\nSee {link}", encoding="utf-8"
    )
    result = extract_folder(docs)
    text = " ".join(p.text for p in result.pages)
    assert len(text) < 4 * len(prose)
    assert "Zero trust architecture" in text and link in text
    assert result.skipped.counts[ex.SKIP_JUNK_WORD] == 1
    lines = describe_skips(result.skipped.to_dict())
    assert f"1 run dropped: {ex.SKIP_JUNK_WORD}: page.txt: {len(blob):,} characters" in lines


def test_chinese_text_without_spaces_is_not_junk(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    chinese = "零信任架构在每个请求到达资源之前都会对其进行检查和验证" * 20
    (docs / "zh.txt").write_text(chinese, encoding="utf-8")
    result = extract_folder(docs)
    assert result.pages[0].text == chinese
    assert ex.SKIP_JUNK_WORD not in result.skipped.counts


def test_a_link_to_a_device_is_reported_as_one(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Zero trust checks every request. " * 50, encoding="utf-8")
    (docs / "zero.txt").symlink_to("/dev/zero")
    (docs / "gone.txt").symlink_to(tmp_path / "nowhere")
    result = extract_folder(docs)
    assert result.skipped.examples[ex.SKIP_LINKED_SPECIAL] == ["zero.txt"]
    assert result.skipped.counts[ex.SKIP_LINKED_SPECIAL] == 1
    assert [p.source for p in result.pages] == ["a.txt"]


@pytest.fixture(scope="module")
def odd_names_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list[Page]
) -> tuple[int, str, Path]:
    """One run over a folder holding a name that is not UTF-8, a name with a newline and a link to /dev/zero."""
    root = tmp_path_factory.mktemp("odd")
    docs = good_docs(root / "docs", nist_pages)
    text = "Risk management profiles describe how organisations govern generative AI systems. " * 30
    (Path(os.fsdecode(bytes(docs) + b"/caf\xe9 notes.txt"))).write_text(text, encoding="utf-8")
    (docs / "two\nragtune: error: lines.txt").write_text(text.replace("Risk", "Safety"), encoding="utf-8")
    (docs / "zero.txt").symlink_to("/dev/zero")
    out = root / "run"
    result = subprocess.run(
        [sys.executable, "-m", "ragtune", *run_args(docs, out, tiny_model_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )
    return result.returncode, result.stderr, out


def test_odd_file_names_and_a_device_link_are_one_line_each_and_the_run_goes_on(
    odd_names_run: tuple[int, str, Path],
) -> None:
    code, err, out = odd_names_run
    assert code == 0, err
    assert "Traceback" not in err
    assert not [line for line in err.splitlines() if line.startswith("ragtune: error:")], err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any(ex.SKIP_LINKED_SPECIAL in w and "zero.txt" in w for w in warnings), warnings
    sources = {p.source for p in read_jsonl(out / "work" / "pages.jsonl", Page)}
    assert {"caf\\xe9 notes.txt", "two\\nragtune: error: lines.txt"} <= sources


def test_a_rerun_over_odd_file_names_reuses_the_run(
    odd_names_run: tuple[int, str, Path], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, out = odd_names_run
    docs = out.parent / "docs"
    assert main(run_args(docs, out, tiny_model_dir)) == 0
    assert "Traceback" not in capsys.readouterr().err


# --- flags out of range -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--seed", "-1", "seed must be 0..4294967295"),
        ("--seed", str(2**32), "seed must be 0..4294967295"),
    ],
)
def test_seed_out_of_numpys_range_is_one_line(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert main(run_args(tmp_path / "docs", tmp_path / "run", tiny_model_dir, flag, value)) == 1
    assert_one_error_line(capsys.readouterr().err, message)


def test_matryoshka_dims_above_the_models_dimension_is_one_line(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    docs = good_docs(tmp_path / "docs", nist_pages)
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir, "--matryoshka-dims", "64,16")) == 1
    assert_one_error_line(
        capsys.readouterr().err, "--matryoshka-dims must be at most the base model's dimension (32), not 64"
    )


@pytest.mark.parametrize("flag", ["--epochs", "--lr"])
def test_pairs_refuses_an_infinite_number(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str) -> None:
    rows = "\n".join(f"question {i},answer {i},1" for i in range(30))
    (tmp_path / "p.csv").write_text(f"sentence1,sentence2,label\n{rows}\n", encoding="utf-8")
    assert (
        main(
            [
                "pairs",
                str(tmp_path / "p.csv"),
                "--out",
                str(tmp_path / "out"),
                flag,
                "inf",
                "--max-steps",
                "1",
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    # The error names the flag the user typed (issue 31).
    assert_one_error_line(capsys.readouterr().err, f"{flag} must be a finite number, not inf")


# --- text without spaces between words (issue 29, item 19) ---------------------------------------


def chinese_docs(folder: Path) -> Path:
    """Three .txt files of Chinese prose (about 8,000 characters), no spaces between words."""
    subjects = [
        "零信任架构",
        "风险管理框架",
        "数据隐私政策",
        "人工智能系统",
        "访问控制策略",
        "网络安全团队",
        "供应链安全",
        "身份验证机制",
        "日志审计流程",
        "模型评估方法",
    ]
    verbs = ["要求", "检查", "记录", "评估", "限制", "保护", "监控", "验证", "更新", "描述"]
    objects = [
        "每一个网络请求",
        "用户的个人数据",
        "系统的运行状态",
        "第三方供应商",
        "训练数据的来源",
        "模型输出的质量",
        "员工的访问权限",
        "安全事件的响应",
        "外部攻击的风险",
        "内部文件的版本",
    ]
    rng = random.Random(0)
    folder.mkdir(parents=True)
    for f in range(3):
        paragraphs = [
            "".join(
                f"{rng.choice(subjects)}{rng.choice(verbs)}{rng.choice(objects)}，"
                f"并且{rng.choice(verbs)}{rng.choice(objects)}。"
                for _ in range(8)
            )
            for _ in range(12)
        ]
        (folder / f"doc{f}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return folder


def test_a_chinese_corpus_says_the_offline_generator_needs_spaces(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = chinese_docs(tmp_path / "docs")
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(
        capsys.readouterr().err,
        "the offline generator needs text with spaces between words",
        "of this text is Chinese, Japanese, Korean or Thai script",
        "use --generator openai with a model that writes questions in the documents' language",
    )
    assert "question filters" not in line


def test_questions_an_llm_writes_in_chinese_are_kept() -> None:
    reply = "1. 零信任架构要求检查什么？\n2. 为什么要记录日志？\n3. 这是一个答案。"
    with LLMServer(lambda prompt: reply) as llm:
        gen = openai(llm.base_url)
        pairs = gen.generate(CHUNKS[:1], random.Random(0))
    assert [p.query for p in pairs] == ["零信任架构要求检查什么？", "为什么要记录日志？"]
    assert gen.dropped.counts == {"not a question": 1}
