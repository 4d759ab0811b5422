"""`ragtune export RUN --onnx`: the exported file, run by OnnxEncoder, gives the SentenceTransformer's embeddings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# The `onnx` extra: onnxruntime alone can come with another package (chromadb brings it), without the exporter.
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from ragtune.cli import main
from ragtune.onnx_export import INT8_FILE, OnnxEncoder, OnnxError, _pool, export_onnx

REPO = Path(__file__).resolve().parents[1]
LONG = " ".join(["zero trust architecture keeps every request under suspicion"] * 40)  # > 128 tokens
TEXTS = ["risk", "incident response plan for a data breach", LONG, "a", "policy enforcement point " * 6]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model with onnx/model.onnx and onnx/model_qint8.onnx (the fixture stays untouched)."""
    model = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model_dir, model)
    written = export_onnx(model, quantize=True)
    assert written == [model / "onnx" / "model.onnx", model / "onnx" / INT8_FILE]
    return model


def _st(model_dir: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu").encode(TEXTS, batch_size=32, normalize_embeddings=True)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fp32_matches_sentence_transformers_for_mixed_lengths(exported: Path) -> None:
    enc = OnnxEncoder(exported)
    assert enc.max_seq_length == 128  # the fixture's max_seq_length, so LONG is truncated like ST does
    got, want = enc.encode(TEXTS), _st(exported)
    assert got.shape == want.shape == (len(TEXTS), 32)
    assert np.all(1 - _cos(got, want) < 1e-4), _cos(got, want)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_padding_and_batching_do_not_change_an_embedding(exported: Path) -> None:
    enc = OnnxEncoder(exported)
    together = enc.encode(TEXTS, batch_size=32)
    alone = np.concatenate([enc.encode([t]) for t in TEXTS])
    in_twos = enc.encode(TEXTS, batch_size=2)  # different batch makeup after sorting by length
    assert np.abs(together - alone).max() < 1e-5
    assert np.abs(together - in_twos).max() < 1e-5


def test_int8_stays_close(exported: Path) -> None:
    got = OnnxEncoder(exported, INT8_FILE).encode(TEXTS)
    cos = _cos(got, _st(exported))
    assert cos.min() > 0.98, cos
    assert cos.min() < 1 - 1e-6  # it really is the quantized file, not the fp32 one


@pytest.mark.parametrize(
    "config",
    [
        {"pooling_mode": "cls"},
        {"pooling_mode": ["max", "mean"]},
        {"pooling_mode_max_tokens": True},
        {"pooling_mode": "lasttoken"},
    ],
)
def test_pooling_follows_the_folders_config(exported: Path, tmp_path: Path, config: dict) -> None:
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 32, **config}))
    got, want = OnnxEncoder(model).encode(TEXTS), _st(model)
    assert got.shape == want.shape
    assert np.all(1 - _cos(got, want) < 1e-4)


def test_pool_by_hand() -> None:
    # Token vectors 1, 3 and a padded 9: the pad must never count.
    h, m = np.array([[[1.0], [3.0], [9.0]]]), np.array([[1, 1, 0]])
    modes = ["mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean"]
    got = _pool(h, m, modes)[0]
    assert got.tolist() == pytest.approx([2.0, 1.0, 3.0, 3.0, 4 / np.sqrt(2), (1 * 1 + 3 * 2) / 3])


def test_unknown_pooling_and_extra_modules_are_refused(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "median"}))
    with pytest.raises(OnnxError, match="pooling mode.*median"):
        OnnxEncoder(model)
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "mean"}))
    modules = json.loads((model / "modules.json").read_text())
    modules.append({"idx": 9, "name": "9", "path": "9_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(OnnxError, match="Dense"):
        OnnxEncoder(model)


def test_encoder_without_an_export_says_what_to_run(tiny_model_dir: Path) -> None:
    with pytest.raises(OnnxError, match="ragtune export RUN --onnx"):
        OnnxEncoder(tiny_model_dir)


def test_a_corrupt_file_is_one_error(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / "onnx" / "model.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(OnnxError, match="cannot load .*export it again"):
        OnnxEncoder(model)


def _run_dir(tmp_path: Path, model: Path) -> Path:
    # Export reads RUN/model only, the folder `ragtune run --out RUN` leaves.
    run = tmp_path / "run"
    shutil.copytree(model, run / "model", ignore=shutil.ignore_patterns("onnx"))
    return run


def test_cli_export_onnx_writes_and_reports(exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_dir(tmp_path, exported)
    assert main(["export", str(run), "--onnx", "--int8"]) == 0
    out = capsys.readouterr().out.splitlines()
    files = [run / "model" / "onnx" / "model.onnx", run / "model" / "onnx" / INT8_FILE]
    assert out[:2] == [f"Wrote {f} ({f.stat().st_size / 1e6:.1f} MB)" for f in files]
    assert out[2:] == []  # plain --int8 is dynamic: no calibration, so no static file and no word about one
    got = OnnxEncoder(run / "model").encode(TEXTS)
    assert np.all(1 - _cos(got, _st(run / "model")) < 1e-4)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--onnx"], "has no model/modules.json"),
        (["--int8", "--llamaindex", "x.json"], "--int8 goes with --onnx"),
    ],
)
def test_cli_export_onnx_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["export", str(tmp_path), *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ragtune: error: ") and message in err, err


# Runs in a fresh interpreter: a meta-path finder makes `import onnxruntime` fail as if it were not installed.
_WITHOUT_ONNXRUNTIME = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from ragtune.cli import main
sys.exit(main(["export", sys.argv[1], "--onnx"]))
"""


def test_missing_onnxruntime_names_the_install(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, tiny_model_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_ONNXRUNTIME, str(run)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("ragtune: error: ") and "pip install 'ragtune[onnx]'" in proc.stderr
    assert "onnxruntime is missing" in proc.stderr
    assert not (run / "model" / "onnx").exists()
