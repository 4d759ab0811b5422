"""Static int8 export: calibrated on the run's chunks, it loads, encodes, and stays close to torch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from ragtune.cli import main
from ragtune.onnx_export import (
    INT8_FILE,
    STATIC_INT8_FILE,
    OnnxEncoder,
    calibration_sample,
    export_onnx,
)
from ragtune.records import Chunk, write_jsonl
from tests.support.encoders import CHUNKS, LONG, TEXTS, _cos, _st


def _activation_scales(model_dir: Path) -> dict[str, float]:
    """The activation scales static quantization fixed, by QuantizeLinear node: what calibration decided."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_dir / "onnx" / STATIC_INT8_FILE))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.name: float(inits[n.input[1]]) for n in model.graph.node if n.op_type == "QuantizeLinear"}


@pytest.fixture(scope="module")
def static_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("int8") / "model"
    shutil.copytree(tiny_model_dir, model)
    written = export_onnx(model, quantize=True, calibration=CHUNKS)
    assert written == [model / "onnx" / f for f in ("model.onnx", INT8_FILE, STATIC_INT8_FILE)]
    return model


def test_static_int8_loads_encodes_and_stays_close_to_torch(static_model: Path) -> None:
    enc = OnnxEncoder(static_model, STATIC_INT8_FILE)
    got, want = enc.encode(TEXTS), _st(static_model)
    assert got.shape == want.shape == (len(TEXTS), 32)
    cos = _cos(got, want)
    assert cos.min() > 0.98, cos
    assert cos.min() < 1 - 1e-6  # really quantized, not the fp32 graph under another name
    assert _activation_scales(static_model)  # QDQ nodes with fixed scales: static, not dynamic
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_static_int8_keeps_the_fragile_matmuls_in_fp32(static_model: Path) -> None:
    import onnx

    model = onnx.load(str(static_model / "onnx" / STATIC_INT8_FILE))
    quantized_inputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    int8 = [n for n in matmuls if all(x in quantized_inputs for x in n.input)]
    # Per BERT layer: q, k, v, attention output and the up-projection in int8; the down-projection and the
    # two activation x activation products stay fp32 (2 layers in the tiny model).
    assert len(int8) == 5 * 2, [n.name for n in int8]
    assert len(matmuls) - len(int8) == 3 * 2


def test_calibration_decides_the_scales(static_model: Path, tmp_path: Path) -> None:
    other = tmp_path / "model"
    shutil.copytree(static_model, other, ignore=shutil.ignore_patterns("onnx"))
    export_onnx(other, quantize=True, calibration=[LONG, "risk"])
    mine, theirs = _activation_scales(static_model), _activation_scales(other)
    assert mine.keys() == theirs.keys()
    assert mine != theirs


def test_without_calibration_texts_only_dynamic_int8_is_written(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    assert export_onnx(model, quantize=True, calibration=["", "  "]) == [
        model / "onnx" / "model.onnx",
        model / "onnx" / INT8_FILE,
    ]
    assert not (model / "onnx" / STATIC_INT8_FILE).exists()


def test_the_sample_covers_every_part_of_the_run() -> None:
    sample = calibration_sample(CHUNKS, 8)
    assert len(sample) == 8
    assert any(t.startswith("Section") for t in sample) and any(t.startswith("Appendix") for t in sample)
    assert calibration_sample(CHUNKS[:3], 8) == CHUNKS[:3]


def test_cli_calibrates_on_the_runs_chunks(static_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(static_model, run / "model", ignore=shutil.ignore_patterns("onnx"))
    chunks = [Chunk(id=f"c{i}", source="doc.pdf", pages=(1,), text=t, n_tokens=20) for i, t in enumerate(CHUNKS)]
    write_jsonl(run / "chunks.jsonl", chunks, Chunk)
    assert main(["export", str(run), "--onnx", "--int8", "static"]) == 0
    out = capsys.readouterr().out
    assert str(run / "model" / "onnx" / STATIC_INT8_FILE) in out
    # The same scales as an export calibrated on those chunks by hand, so the CLI fed it the run's chunks.
    assert _activation_scales(run / "model") == pytest.approx(_activation_scales(static_model))
    got = OnnxEncoder(run / "model", STATIC_INT8_FILE).encode(TEXTS)
    assert _cos(got, _st(run / "model")).min() > 0.98


# bench/gpu.sh (issue 33's GPU script) lives beside the int8 bench; no GPU here, so its dry run is what CI can check.
GPU_SH = Path(__file__).resolve().parents[1] / "bench" / "gpu.sh"


def test_gpu_script_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    import subprocess

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.pdf").write_bytes(b"%PDF-1.4")
    out = tmp_path / "out"
    assert subprocess.run(["bash", "-n", str(GPU_SH)]).returncode == 0
    done = subprocess.run(
        ["bash", str(GPU_SH), "--dry-run", "--docs", str(docs), "--out", str(out)],
        cwd=GPU_SH.parents[1],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("pip install -e .[fast,onnx]" in line for line in lines)
    timed = [line for line in lines if "-m bench.stage_times" in line]
    assert [line.split()[4] for line in timed] == ["resources", str(docs)]
    assert all("--device cuda" in line for line in timed)
    assert not out.exists()  # a dry run makes nothing


def test_gpu_script_refuses_outside_the_repo_root(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(["bash", str(GPU_SH), "--dry-run"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert "repository root" in done.stderr
