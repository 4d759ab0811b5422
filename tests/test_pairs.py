"""`ragtune pairs` and `ragtune similarity`: input errors, alternatives, split, correlations, training, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ragtune.cli import main
from ragtune.config import ConfigError
from ragtune.pairs import (
    PairsConfig,
    PairsError,
    dedupe,
    gather,
    load_alternatives_file,
    load_pairs_file,
    make_loss,
    render_pairs_card,
    run_pairs,
    split_pairs,
    train_pairs,
)
from ragtune.records import LabelledPair, SkipCounter, write_jsonl
from ragtune.similarity import SimilarityError, correlations, evaluate_pairs, pearson, rank, spearman
from tests.support.runs import pairs_args

REPO = Path(__file__).resolve().parents[1]
HEADER = "sentence1,sentence2,label\n"


def one_error_line(err: str) -> str:
    """The single `ragtune: error:` line, checked to be the whole of stderr (no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragtune: error: "), err
    return lines[0].removeprefix("ragtune: error: ")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def labelled_csv(tmp_path: Path, n: int = 30) -> Path:
    """n pairs of skill-like phrases with labels spread over [0, 1]."""
    words = ["python", "java", "testing", "appium", "devops", "cloud", "design", "nursing", "sales", "sql"]
    rows = [f"{words[i % 10]} engineer,{words[(i * 3 + 1) % 10]} developer {i},{(i % 11) / 10}" for i in range(n)]
    return write(tmp_path, "pairs.csv", HEADER + "\n".join(rows) + "\n")


# ---------------------------------------------------------------- input errors

ERROR_CASES = [
    (
        "missing column",
        "pairs.csv",
        "sentence1,text2,label\na,b,0.5\n",
        "{path}: missing column(s) sentence2; expected sentence1,sentence2,label (found: sentence1,text2,label)",
    ),
    (
        "non-numeric label",
        "pairs.csv",
        HEADER + "a,b,0.5\nc,d,high\n",
        "{path}:3: label 'high' is not a number; labels must be in [0, 1]",
    ),
    ("label above 1", "pairs.csv", HEADER + "a,b,1.5\n", "{path}:2: label 1.5 is outside [0, 1]"),
    ("negative label", "pairs.csv", HEADER + "a,b,0.2\n\nc,d,-0.1\n", "{path}:4: label -0.1 is outside [0, 1]"),
    ("nan label", "pairs.csv", HEADER + "a,b,nan\n", "{path}:2: label nan is outside [0, 1]"),
    ("empty label", "pairs.csv", HEADER + "a,b,\n", "{path}:2: label '' is not a number; labels must be in [0, 1]"),
    ("empty text", "pairs.csv", HEADER + "a,b,0.5\nc,  ,0.5\n", "{path}:3: sentence2 is empty"),
    ("empty file", "pairs.csv", "", "{path} is empty"),
    ("header only", "pairs.csv", HEADER, "{path} has no pairs"),
    ("unsupported type", "pairs.txt", "a b 0.5\n", "{path}: unsupported file type '.txt'; use .csv or .jsonl"),
    (
        "bad JSONL",
        "pairs.jsonl",
        '{"sentence1": "a", "sentence2": "b", "label": 0.5}\n{"sentence1": "a" "b"}\n',
        "{path}:2: not valid JSON (Expecting ',' delimiter)",
    ),
    ("JSONL missing key", "pairs.jsonl", '{"sentence1": "a", "sentence2": "b"}\n', "{path}:1: missing key(s) label"),
    (
        "JSONL not an object",
        "pairs.jsonl",
        "[1, 2]\n",
        "{path}:1: expected a JSON object with keys sentence1, sentence2, label",
    ),
    (
        "JSONL null label",
        "pairs.jsonl",
        '{"sentence1": "a", "sentence2": "b", "label": null}\n',
        "{path}:1: label null is not a number; labels must be in [0, 1]",
    ),
    (
        "JSONL boolean label",
        "pairs.jsonl",
        '{"sentence1": "a", "sentence2": "b", "label": true}\n',
        "{path}:1: label true is not a number; labels must be in [0, 1]",
    ),
    (
        "JSONL text not a string",
        "pairs.jsonl",
        '{"sentence1": 3, "sentence2": "b", "label": 1}\n',
        "{path}:1: sentence1 must be text, not 3",
    ),
]


@pytest.mark.parametrize(("case", "name", "text", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_input_error_from_library(tmp_path: Path, case: str, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(PairsError) as info:
        load_pairs_file(path)
    assert str(info.value) == message.format(path=path)


@pytest.mark.parametrize(("case", "name", "text", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_input_error_from_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    assert main(["pairs", str(path), "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err) == message.format(path=path)
    assert not (tmp_path / "run").exists()


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(PairsError, match=re.escape(f"{missing} does not exist")):
        load_pairs_file(missing)
    assert main(["pairs", str(missing), "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err) == f"{missing} does not exist"
    # The same for an alternatives file.
    assert main(["pairs", "--alternatives", str(missing), "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err) == f"{missing} does not exist"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "give at least one pairs file or --alternatives file"),
        (["x.csv", "--test-fraction", "0.9"], "--test-fraction must be between 0.05 and 0.5, not 0.9"),
        (["x.csv", "--batch-size", "1"], "--batch-size must be >= 2, not 1"),
        (["x.csv", "--lr", "0"], "--lr must be in (0, 1), not 0.0"),
    ],
)
def test_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    assert main(["pairs", *flags, "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err) == message


def test_config_takes_preset_values_unless_given() -> None:
    small = PairsConfig(pairs_files=(Path("p.csv"),))
    assert (small.base_model, small.epochs, small.batch_size, small.learning_rate) == ("", 2.0, 16, 6e-5)
    medium = PairsConfig(pairs_files=(Path("p.csv"),), preset="medium", epochs=1.0)
    assert (medium.base_model, medium.epochs) == ("sentence-transformers/all-mpnet-base-v2", 1.0)
    with pytest.raises(ConfigError, match="preset must be one of small, medium, not 'large'"):
        PairsConfig(pairs_files=(Path("p.csv"),), preset="large")


def test_jsonl_accepts_ragtune_header_and_numeric_strings(tmp_path: Path) -> None:
    path = tmp_path / "own.jsonl"
    write_jsonl(path, [LabelledPair("a", "b", 0.25), LabelledPair("c", "d", 1.0)], LabelledPair)
    assert load_pairs_file(path) == [LabelledPair("a", "b", 0.25), LabelledPair("c", "d", 1.0)]
    bom = write(tmp_path, "bom.csv", "\ufeffSentence1, sentence2 ,LABEL,note\n  a ,b,1,x\n")
    assert load_pairs_file(bom) == [LabelledPair("a", "b", 1.0)]


# ---------------------------------------------------------------- alternatives and dedupe


def test_alternatives_expand_every_pair_within_a_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "vocab.csv",
        "name,description,alternatives,other\n"
        "Appium,mobile test automation,Appium testing; mobile automation|Appium,\n"
        "Poverty,,,low income\n"
        "Lonely,,,\n",
    )
    skipped = SkipCounter()
    pairs = load_alternatives_file(path, skipped)
    appium = ["Appium", "mobile test automation", "Appium testing", "mobile automation"]
    expected = [LabelledPair(appium[i], appium[j], 1.0) for i in range(4) for j in range(i + 1, 4)]
    expected.append(LabelledPair("Poverty", "low income", 1.0))
    assert pairs == expected  # 4 phrasings -> 6 pairs (the repeated "Appium" counts once), then 1
    assert skipped.counts == {"alternatives row with one phrasing": 1}
    assert skipped.examples["alternatives row with one phrasing"] == ["vocab.csv:4"]


def test_alternatives_errors(tmp_path: Path) -> None:
    no_name = write(tmp_path, "a.csv", "title,alternatives\nx,y\n")
    with pytest.raises(PairsError) as info:
        load_alternatives_file(no_name, SkipCounter())
    assert str(info.value) == f"{no_name}: missing column(s) name; expected name (found: title,alternatives)"
    empty_name = write(tmp_path, "b.csv", "name,alternatives\nx,y\n ,z\n")
    with pytest.raises(PairsError) as info:
        load_alternatives_file(empty_name, SkipCounter())
    assert str(info.value) == f"{empty_name}:3: name is empty"


def test_dedupe_keeps_first_label_in_either_order(tmp_path: Path) -> None:
    labelled = write(tmp_path, "p.csv", HEADER + "Appium,Appium testing,0.8\nb,a,0.3\na,b,0.5\n")
    alts = write(tmp_path, "v.csv", "name,alternatives\nAppium,Appium testing\n")
    cfg = PairsConfig(pairs_files=(labelled,), alternatives=(alts,))
    pairs, skipped, counts = gather(cfg)
    assert pairs == [LabelledPair("Appium", "Appium testing", 0.8), LabelledPair("b", "a", 0.3)]
    assert skipped.counts == {"duplicate pair": 2}
    assert counts == {"n_labelled": 3, "n_from_alternatives": 1}
    assert dedupe([LabelledPair("x", "x", 1.0)], SkipCounter()) == [LabelledPair("x", "x", 1.0)]


# ---------------------------------------------------------------- split


def test_split_is_seeded_stratified_and_keeps_identical_texts_in_training() -> None:
    pairs = [LabelledPair(f"a{i}", f"b{i}", (i % 10) / 9) for i in range(100)]
    pairs.append(LabelledPair("No Skill", "No Skill", 1.0))
    train, held = split_pairs(pairs, 0.2, seed=7)
    assert (train, held) == split_pairs(pairs, 0.2, seed=7)
    assert held != split_pairs(pairs, 0.2, seed=8)[1]
    assert len(held) == 20 and len(train) == 81
    assert sorted(train + held, key=pairs.index) == pairs
    assert LabelledPair("No Skill", "No Skill", 1.0) in train
    # Five label buckets of 20 pairs each: four of each held out.
    buckets = [min(int(p.label * 5), 4) for p in held]
    assert [buckets.count(b) for b in range(5)] == [4, 4, 4, 4, 4]


# ---------------------------------------------------------------- correlations


def test_pearson_and_spearman_against_scipy_and_by_hand() -> None:
    from scipy import stats

    x = [0.1, 0.4, 0.4, 0.9, 0.2, 0.7]
    y = [0.0, 0.5, 0.3, 1.0, 0.2, 0.2]
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert rank([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    # By hand: ranks of y are 1,3,2,4; d^2 sums to 2; 1 - 6*2 / (4 * (16 - 1)) = 0.8.
    assert spearman([1, 2, 3, 4], [10, 20, 15, 40]) == pytest.approx(0.8)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert correlations([0.5, 0.5, 0.5], [0, 0.5, 1]) == {"pearson": 0.0, "spearman": 0.0}


class KeywordEncoder:
    """One-hot vector per known keyword, so every cosine similarity is exactly 0 or 1."""

    words = ("appium", "devops", "poverty", "jail")

    def encode(self, texts: list[str], **kw: object) -> np.ndarray:
        return np.array([[1.0 if w in t.lower() else 0.0 for w in self.words] for t in texts])


def test_evaluate_pairs_with_keyword_encoder() -> None:
    pairs = [
        LabelledPair("Appium", "appium testing", 0.9),  # cosine 1
        LabelledPair("DevOps", "devops engineer", 0.8),  # cosine 1
        LabelledPair("poverty", "jail", 0.1),  # cosine 0
        LabelledPair("Appium", "DevOps", 0.0),  # cosine 0
    ]
    # Scores (1, 1, 0, 0) vs labels (0.9, 0.8, 0.1, 0.0): deviations (.5, .5, -.5, -.5) and
    # (.45, .35, -.35, -.45), so Pearson = 0.8 / sqrt(1 * 0.65).
    result = evaluate_pairs(KeywordEncoder(), pairs)
    assert result["pearson"] == pytest.approx(0.8 / np.sqrt(0.65))
    # Ranks (3.5, 3.5, 1.5, 1.5) vs (4, 3, 2, 1): Pearson of ranks = 4 / sqrt(4 * 5).
    assert result["spearman"] == pytest.approx(4 / np.sqrt(20))


# ---------------------------------------------------------------- training, run dir, card

FRONT_MATTER = re.compile(
    r"\A---\n(base_model: [^\n]+\n)?library_name: sentence-transformers\npipeline_tag: sentence-similarity\n"
    r"tags:\n(- [^\n]+\n)+model-index:\n(.*\n)*?---\n\n# ragtune-pairs-model\n"
)


def test_run_pairs_on_tiny_model_writes_metrics_model_and_card(tmp_path: Path, tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    data = labelled_csv(tmp_path)
    alts = write(tmp_path, "vocab.csv", "name,description,alternatives\nPoverty,low income,financial hardship\n")
    out = tmp_path / "run"
    cfg = PairsConfig(
        pairs_files=(data,), alternatives=(alts,), out=out, base_model=str(tiny_model_dir), max_steps=2, device="cpu"
    )
    messages: list[str] = []
    result = run_pairs(cfg, log=messages.append)

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics == result.metrics
    assert set(metrics) == {
        "base",
        "fine_tuned",
        "improved",
        "n_pairs",
        "n_train",
        "n_test",
        "n_labelled",
        "n_from_alternatives",
        "skipped",
    }
    assert set(metrics["base"]) == set(metrics["fine_tuned"]) == {"pearson", "spearman"}
    assert isinstance(metrics["improved"], bool)
    assert (metrics["n_pairs"], metrics["n_train"] + metrics["n_test"], metrics["n_from_alternatives"]) == (33, 33, 3)
    assert result.train["steps"] == 2
    assert messages[0].startswith("pairs: 33 (30 labelled, 3 from alternatives, 0 skipped)")

    model = SentenceTransformer(str(out / "model"), device="cpu")
    assert model.encode(["hello"]).shape == (1, 32)
    card = (out / "model" / "README.md").read_text(encoding="utf-8")
    assert FRONT_MATTER.match(card), card[:600]
    assert "base_model:" not in card  # a local base model has no Hub id to cite
    assert str(tmp_path) not in card and str(tiny_model_dir) not in card
    assert f"| base | {metrics['base']['pearson']:.4f} | {metrics['base']['spearman']:.4f} |" in card
    assert f"| fine-tuned | {metrics['fine_tuned']['pearson']:.4f} | {metrics['fine_tuned']['spearman']:.4f} |" in card
    assert "| loss | CosineSimilarityLoss |" in card and "- loss:CosineSimilarityLoss" in card
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert (run["ragtune"], run["version"], run["config"]["max_steps"]) == ("pairs-run", 1, 2)
    assert not (out / "model.tmp").exists() and not (out / "trainer.tmp").exists()
    # The split is written in ragtune's own format, which `pairs` reads back.
    assert len(load_pairs_file(out / "test.jsonl")) == metrics["n_test"]


def test_card_cites_bundled_model_as_hub_id() -> None:
    cfg = PairsConfig(pairs_files=(Path("/somewhere/private/skills.csv"),), loss="cosent")
    metrics = {
        "base": {"pearson": 0.5, "spearman": 0.4},
        "fine_tuned": {"pearson": 0.7, "spearman": 0.6},
        "improved": True,
        "n_pairs": 10,
        "n_train": 8,
        "n_test": 2,
        "n_labelled": 10,
        "n_from_alternatives": 0,
    }
    card = render_pairs_card(cfg, metrics, {"steps": 5}, 256)
    assert card.startswith("---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n")
    assert FRONT_MATTER.match(card)
    assert "/somewhere" not in card and "skills.csv" in card
    assert "- type: spearman_cosine\n      value: 0.6000" in card
    assert "| loss | CoSENTLoss |" in card and "Both correlations went up." in card


@pytest.mark.parametrize(
    ("loss", "cls"), [("cosine", "CosineSimilarityLoss"), ("cosent", "CoSENTLoss"), ("angle", "AnglELoss")]
)
def test_each_loss_trains(tmp_path: Path, tiny_model, loss: str, cls: str) -> None:
    assert type(make_loss(loss, tiny_model)).__name__ == cls
    cfg = PairsConfig(pairs_files=(Path("p.csv"),), loss=loss, max_steps=1, batch_size=4)
    pairs = [LabelledPair(f"skill {i}", f"other {i}", i / 7) for i in range(8)]
    result = train_pairs(tiny_model, pairs, cfg, tmp_path / "work", "cpu")
    assert result["steps"] == 1 and np.isfinite(result["final_loss"])


def test_too_few_or_single_label_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    few = write(tmp_path, "few.csv", HEADER + "a,b,0.5\nc,d,0.1\n")
    assert main(["pairs", str(few), "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err) == "too few pairs: 2 after removing duplicates; give at least 20"
    same = write(tmp_path, "same.csv", HEADER + "".join(f"a{i},b{i},1\n" for i in range(30)))
    assert main(["pairs", str(same), "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err).startswith("all held-out pairs have the same label")


def test_refuses_a_ragtune_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text("{}", encoding="utf-8")
    assert main(["pairs", str(labelled_csv(tmp_path)), "--out", str(out)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"{out} holds a `ragtune run` directory; choose another --out for `ragtune pairs`"
    )


# ---------------------------------------------------------------- model availability


def test_medium_preset_offline_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["pairs", str(labelled_csv(tmp_path)), "--preset", "medium", "--out", str(tmp_path / "run")]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        "sentence-transformers/all-mpnet-base-v2 is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
        "download it once with network access, pass --base-model PATH to a local copy, or use --preset small"
    )


def test_medium_preset_hub_unreachable_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    import ragtune.hub

    calls = []

    class Unreachable:
        def model_info(self, repo_id: str, timeout: float) -> None:
            calls.append((repo_id, timeout))
            raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(ragtune.hub.resolve, "get_api", lambda: Unreachable())
    assert main(["pairs", str(labelled_csv(tmp_path)), "--preset", "medium", "--out", str(tmp_path / "run")]) == 1
    assert calls == [("sentence-transformers/all-mpnet-base-v2", 10)]
    assert one_error_line(capsys.readouterr().err) == (
        "sentence-transformers/all-mpnet-base-v2 is not downloaded and the Hub cannot be reached "
        "([Errno -2] Name or service not known); download it once with network access, pass --base-model PATH "
        "to a local copy, or use --preset small"
    )


# ---------------------------------------------------------------- CLI end to end and similarity


def test_cli_pairs_then_similarity(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    code = main(pairs_args(labelled_csv(tmp_path), out, tiny_model_dir, "--max-steps", "2", "--pairs-loss", "cosent"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Cosine similarity vs labels on 6 held-out pairs:" in captured.out
    assert re.search(r"^base\s+-?\d\.\d{4}\s+-?\d\.\d{4}$", captured.out, re.M)
    assert re.search(r"^fine-tuned\s+-?\d\.\d{4}\s+-?\d\.\d{4}$", captured.out, re.M)
    assert "training: CoSENTLoss" in captured.err and "Traceback" not in captured.err

    # A run directory stands for its model/.
    model = SentenceTransformer(str(out / "model"), device="cpu")
    a, b, c = model.encode(["Appium mobile testing", "DevOps", "poverty"], normalize_embeddings=True)
    assert main(["similarity", str(out), "Appium mobile testing", "DevOps", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert re.fullmatch(r"-?\d\.\d{4}\n", printed) and float(printed) == pytest.approx(float(a @ b), abs=1.5e-4)

    assert main(["similarity", str(out / "model"), "Appium mobile testing", "DevOps", "poverty"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["[1] Appium mobile testing", "[2] DevOps", "[3] poverty", ""]
    assert lines[4].split() == ["[1]", "[2]", "[3]"]
    row2 = lines[6].split()
    assert row2[0] == "[2]" and [float(v) for v in row2[1:]] == pytest.approx(
        [float(b @ a), float(b @ b), float(b @ c)], abs=6e-5
    )


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["only one"], "give at least two texts to compare, not 1"),
        (["one", " "], "text 2 is empty"),
    ],
)
def test_similarity_errors(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], texts: list[str], message: str
) -> None:
    assert main(["similarity", str(tiny_model_dir), *texts]) == 1
    assert one_error_line(capsys.readouterr().err) == message


def test_similarity_unknown_model_offline(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["similarity", "someone/not-a-model", "a", "b"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        "someone/not-a-model is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
        "download it once with network access, or pass a local model folder or a ragtune run directory"
    )


def test_similarity_unknown_hub_id_online(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    from huggingface_hub import constants
    from huggingface_hub.errors import RepositoryNotFoundError

    import ragtune.hub

    class NoSuchRepo:
        def model_info(self, repo_id: str, timeout: float) -> None:
            request = httpx.Request("GET", f"https://huggingface.co/api/models/{repo_id}")
            raise RepositoryNotFoundError("404 Client Error", response=httpx.Response(404, request=request))

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(ragtune.hub.resolve, "get_api", lambda: NoSuchRepo())
    assert main(["similarity", "someone/not-a-model", "a", "b"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        "someone/not-a-model is neither a local folder nor a model on the Hugging Face Hub (or it is private); "
        "check the name or pass a local path"
    )


def test_similarity_error_type_is_user_error() -> None:
    from ragtune.cli.pairs import COMMANDS
    from ragtune.errors import RagtuneError

    assert issubclass(SimilarityError, RagtuneError) and issubclass(PairsError, RagtuneError)
    assert set(COMMANDS) == {"pairs", "similarity"}


def test_bundled_resources_load() -> None:
    data = REPO / "tests" / "data" / "pairs"
    cfg = PairsConfig(
        pairs_files=tuple(data / f for f in ("skills.csv", "resumes_jobs.csv", "vocabulary_pairs.csv")),
        alternatives=(data / "vocabulary.csv",),
    )
    pairs, skipped, counts = gather(cfg)
    assert len(pairs) >= 500 and counts["n_from_alternatives"] >= 200
    assert LabelledPair("poverty", "incarceration", 0.01) in pairs
    assert LabelledPair("No Skill", "No Skill", 1.0) in pairs
    assert all(0.0 <= p.label <= 1.0 for p in pairs)


# ---------------------------------------------------------------- interrupting and resuming


def test_ctrl_c_during_training_keeps_a_checkpoint_and_the_rerun_resumes(tmp_path: Path, tiny_model_dir: Path) -> None:
    # Issue 16: the message said "rerun to resume from the training checkpoint", and the rerun began at step 1.
    import signal
    import subprocess
    import sys

    from tests.support.signals import ragtune_env, signal_when

    steps = 60  # still training when the signal lands, which the first step line triggers
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ragtune",
        "pairs",
        str(labelled_csv(tmp_path)),
        "--out",
        str(out),
        "--base-model",
        str(tiny_model_dir),
        "--max-steps",
        str(steps),
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]
    env = ragtune_env(tmp_path)
    # "  step …": the Trainer is stepping.
    code, err = signal_when(cmd, env, tmp_path, signal.SIGINT, lambda line: line.startswith("  step "))
    assert code == 130, err
    assert "Traceback" not in err
    work = out / "trainer.tmp"
    assert err.strip().splitlines()[-1] == (
        f"ragtune: interrupted (SIGINT); the training checkpoint in {work} is "
        "kept; rerun the same command to resume from it."
    )
    stopped_at = max(int(p.name.split("-")[1]) for p in work.glob("checkpoint-*"))
    assert 0 < stopped_at < steps
    assert not (out / "model").exists()

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"(resumed at step {stopped_at})" in again.stderr
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert (run["train"]["steps"], run["train"]["resumed_at"]) == (steps, stopped_at)
    assert (out / "model" / "model.safetensors").is_file() and not work.exists()


def test_a_checkpoint_is_resumed_only_by_the_same_run(tmp_path: Path) -> None:
    from ragtune.pairs import checkpoint_to_resume
    from ragtune.training.checkpoints import CHECKPOINT_MARKER

    def checkpoint(step: int, complete: bool = True) -> None:
        folder = work / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}), encoding="utf-8")
        if complete:
            files = {"model.safetensors": 7, "trainer_state.json": len(json.dumps({"global_step": step}))}
            (folder / CHECKPOINT_MARKER).write_text(json.dumps({"step": step, "files": files}), encoding="utf-8")

    work = tmp_path / "trainer.tmp"
    assert checkpoint_to_resume(work, "key-a") is None and work.is_dir()
    checkpoint(4)
    checkpoint(12)
    checkpoint(16, complete=False)  # cut off mid-write by a second Ctrl-C
    notes: list[str] = []
    assert checkpoint_to_resume(work, "key-a", notes.append) == work / "checkpoint-12"
    assert notes == [
        "checkpoint-16 cannot be resumed from: it was cut off mid-write (no ragtune_checkpoint.json); "
        "resuming from checkpoint-12"
    ]
    # Other settings or inputs: the checkpoints are of no use, and go.
    assert checkpoint_to_resume(work, "key-b") is None
    assert not list(work.glob("checkpoint-*"))


def test_ctrl_c_before_training_says_nothing_was_kept(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragtune.pairs.run as pairs_run

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the base model is evaluated

    monkeypatch.setattr(pairs_run, "evaluate_pairs", interrupted)
    code = main(pairs_args(labelled_csv(tmp_path), tmp_path / "run", tiny_model_dir))
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "ragtune: interrupted (SIGINT); nothing was kept; rerun the same command to start again."
    )
