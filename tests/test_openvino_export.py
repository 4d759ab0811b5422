"""OpenVINO export: fp32 that computes as torch does, static int8 calibrated on the run's chunks, the CLI,
and one-line errors. Skipped when openvino or nncf is not installed (pip install 'ragtune[openvino]')."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from ragtune.cli import main
from ragtune.errors import OpenVinoError
from ragtune.openvino_export import FP32_FILE, INT8_FILE, OV_DIR, OpenVinoEncoder, export_openvino
from ragtune.records import Chunk, write_jsonl
from tests.support.encoders import CHUNKS, LONG, TEXTS, _cos, _st

REPO = Path(__file__).resolve().parents[1]


def _files(model: Path) -> list[Path]:
    return [model / OV_DIR / FP32_FILE, model / OV_DIR / INT8_FILE]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("openvino") / "model"
    shutil.copytree(tiny_model_dir, model)
    assert export_openvino(model, int8=True, calibration=CHUNKS) == _files(model)
    return model


def test_fp32_computes_as_sentence_transformers_does(exported: Path) -> None:
    got = OpenVinoEncoder(exported, FP32_FILE, precision="f32").encode(TEXTS, batch_size=2)
    want = _st(exported)
    assert got.shape == want.shape == (len(TEXTS), 32)
    assert np.all(1 - _cos(got, want) < 1e-5), _cos(got, want)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_int8_is_quantized_and_stays_close(exported: Path) -> None:
    got = OpenVinoEncoder(exported, INT8_FILE, precision="f32").encode(TEXTS)
    cos = _cos(got, _st(exported))
    assert cos.min() > 0.98, cos
    assert cos.min() < 1 - 1e-6  # really quantized, not the fp32 graph under another name
    assert "FakeQuantize" in (exported / OV_DIR / INT8_FILE).read_text(encoding="utf-8")
    assert "FakeQuantize" not in (exported / OV_DIR / FP32_FILE).read_text(encoding="utf-8")


def test_int8_quantizes_every_linear_layer_down_projections_included(exported: Path) -> None:
    import openvino as ov

    model = ov.Core().read_model(str(exported / OV_DIR / INT8_FILE))
    matmuls = [op for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    fed = [op for op in matmuls if op.input_value(0).get_node().get_type_name() == "FakeQuantize"]
    # Per BERT layer: q, k, v, attention output, up- and down-projection (2 layers in the tiny model); the attention
    # products stay inside the fused ScaledDotProductAttention op, unquantized.
    assert len(matmuls) == len(fed) == 6 * 2, [op.get_friendly_name() for op in matmuls]
    down = [op for op in fed if op.input_value(0).get_partial_shape()[-1].get_length() == 64]  # intermediate_size
    assert len(down) == 2


def test_the_cpus_default_precision_stays_close(exported: Path) -> None:
    # bf16 on CPUs with AVX512-BF16 or AMX (this project's), f32 elsewhere: either way near torch.
    enc = OpenVinoEncoder(exported, INT8_FILE)
    assert enc.precision in ("f32", "bf16")
    assert _cos(enc.encode(TEXTS), _st(exported)).min() > 0.97


def test_the_layout_is_what_sentence_transformers_openvino_backend_reads(exported: Path) -> None:
    import openvino as ov

    # backend="openvino" (optimum-intel) globs <model>/openvino/openvino*.xml and reads last_hidden_state.
    for file in _files(exported):
        model = ov.Core().read_model(str(file))
        assert {i.get_any_name() for i in model.inputs} == {"input_ids", "attention_mask", "token_type_ids"}
        assert "last_hidden_state" in model.outputs[0].get_names()
        assert file.with_suffix(".bin").is_file()


def test_calibration_decides_the_ranges(exported: Path, tmp_path: Path) -> None:
    other = tmp_path / "model"
    shutil.copytree(exported, other, ignore=shutil.ignore_patterns(OV_DIR))
    export_openvino(other, int8=True, calibration=[LONG, "risk"])
    mine, theirs = (m / OV_DIR / INT8_FILE.replace(".xml", ".bin") for m in (exported, other))
    assert mine.read_bytes() != theirs.read_bytes()
    # Only the int8 file depends on calibration.
    fp32 = FP32_FILE.replace(".xml", ".bin")
    assert (exported / OV_DIR / fp32).read_bytes() == (other / OV_DIR / fp32).read_bytes()


def test_int8_without_calibration_texts_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with pytest.raises(OpenVinoError, match="calibrated on the run's chunks"):
        export_openvino(model, int8=True, calibration=["", "  "])
    assert not (model / OV_DIR).exists()


def test_encoder_without_an_export_says_what_to_run(tiny_model_dir: Path) -> None:
    with pytest.raises(OpenVinoError, match=r"ragtune export RUN --openvino --int8` first"):
        OpenVinoEncoder(tiny_model_dir)


def test_a_corrupt_file_is_one_error(exported: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    (model / OV_DIR / FP32_FILE).write_text("<net><not xml", encoding="utf-8")
    with pytest.raises(OpenVinoError, match="cannot load .*export it again"):
        OpenVinoEncoder(model, FP32_FILE)


def _run_dir(tmp_path: Path, model: Path, chunks: bool = True) -> Path:
    run = tmp_path / "run"
    shutil.copytree(model, run / "model", ignore=shutil.ignore_patterns(OV_DIR))
    if chunks:
        rows = [Chunk(id=f"c{i}", source="doc.pdf", pages=(1,), text=t, n_tokens=20) for i, t in enumerate(CHUNKS)]
        (run / "work").mkdir()  # where `ragtune run` keeps its stages' files
        write_jsonl(run / "work" / "chunks.jsonl", rows, Chunk)
    return run


def test_cli_export_openvino_int8_calibrates_on_the_runs_chunks(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_dir(tmp_path, exported)
    assert main(["export", str(run), "--openvino", "--int8"]) == 0
    out = capsys.readouterr().out.splitlines()
    files = _files(run / "model")
    sizes = [(f.stat().st_size + f.with_suffix(".bin").stat().st_size) / 1e6 for f in files]
    assert [line for line in out if line.startswith("Wrote")] == [
        f"Wrote {f} and its .bin ({s:.1f} MB)" for f, s in zip(files, sizes)
    ]
    # The same int8 file as an export calibrated on those chunks by hand, so the CLI fed it the run's chunks.
    bin8 = INT8_FILE.replace(".xml", ".bin")
    assert (run / "model" / OV_DIR / bin8).read_bytes() == (exported / OV_DIR / bin8).read_bytes()


def test_cli_export_openvino_fp32_needs_no_chunks(exported: Path, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, exported, chunks=False)
    assert main(["export", str(run), "--openvino"]) == 0
    assert (run / "model" / OV_DIR / FP32_FILE).is_file() and not (run / "model" / OV_DIR / INT8_FILE).exists()


@pytest.mark.parametrize(
    "argv, chunks, message",
    [
        (["--openvino", "--int8"], False, "chunks.jsonl is missing: OpenVINO int8 is calibrated on the run's chunks"),
        (["--openvino", "--onnx"], True, "not allowed with argument"),
    ],
)
def test_cli_export_openvino_bad_input_is_one_line(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], chunks: bool, message: str
) -> None:
    run = _run_dir(tmp_path, exported, chunks=chunks)
    try:
        code = main(["export", str(run), *argv])
    except SystemExit as e:  # argparse's own refusal (mutually exclusive options)
        code = e.code
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (run / "model" / OV_DIR).exists()


def test_cli_export_openvino_without_a_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path), "--openvino"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ragtune: error: ") and "has no model/modules.json" in err, err


# Runs in a fresh interpreter: a meta-path finder makes `import nncf` fail as if it were not installed.
_WITHOUT_NNCF = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "nncf":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from ragtune.cli import main
sys.exit(main(["export", sys.argv[1], "--openvino", "--int8"]))
"""


def test_missing_nncf_names_the_install(tiny_model_dir: Path, tmp_path: Path) -> None:
    run = _run_dir(tmp_path, tiny_model_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NNCF, str(run)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("ragtune: error: ") and "pip install 'ragtune[openvino]'" in proc.stderr
    assert "nncf is missing" in proc.stderr
    assert not (run / "model" / OV_DIR).exists()
