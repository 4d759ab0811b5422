"""OpenVINO export of a sentence-transformers folder (fp32 and static int8), and an encoder that runs it on CPU.

    export_openvino(RUN / "model")                                   -> [RUN/model/openvino/openvino_model.xml]
    export_openvino(RUN / "model", int8=True, calibration=chunk_texts)
        -> [... openvino_model.xml, ... openvino_model_qint8_quantized.xml]
    OpenVinoEncoder(RUN / "model").encode(["zero trust"]).shape        -> (1, 384)

Why OpenVINO: on this project's AVX512-VNNI CPU, onnxruntime's int8 files ran at 1.0x to 1.3x torch's
speed, while OpenVINO running an int8 model quantized by NNCF (calibrated on the run's chunks) ran at
about 2x (docs/benchmarks.md). The transformer is converted from PyTorch directly (no ONNX step), with
the same inputs and output name (`last_hidden_state`) as the ONNX export, into the layout
sentence-transformers' `backend="openvino"` reads: `<model>/openvino/openvino_model*.xml` (+ `.bin`).
That backend needs optimum-intel, whose releases pin an older transformers and torch, so ragtune runs
the files itself with `OpenVinoEncoder` (pooling and normalisation as the folder's config says).
Needs `pip install 'ragtune[openvino]'` (openvino, and nncf for int8).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import OpenVinoError
from .onnx_export import (
    OnnxEncoder,
    _last_hidden,
    _load_tokenizer,
    _quiet,
    _traceable,
    calibration_batches,
    calibration_sample,
    read_layout,
)

INSTALL_HINT = "pip install 'ragtune[openvino]'"
OV_DIR = "openvino"  # the subfolder sentence-transformers' backend="openvino" looks in
FP32_FILE = "openvino_model.xml"
# sentence-transformers' own name for a statically quantized OpenVINO model (export_static_quantized_openvino_model).
INT8_FILE = "openvino_model_qint8_quantized.xml"
OUTPUT = "last_hidden_state"


def require_openvino(int8: bool = False) -> None:
    """Raise one OpenVinoError naming the install command if openvino (or, for int8, nncf) is missing."""
    for name in ("openvino", "nncf") if int8 else ("openvino",):
        try:
            __import__(name)
        except ImportError:
            raise OpenVinoError(
                f"OpenVINO export needs openvino and nncf ({name} is missing): {INSTALL_HINT}"
            ) from None


def export_openvino(model_dir: str | Path, int8: bool = False, calibration: Sequence[str] = ()) -> list[Path]:
    """Write `<transformer folder>/openvino/openvino_model.xml` (fp32) and, with `int8`,
    `openvino_model_qint8_quantized.xml` (static int8 by NNCF, activation ranges measured on
    `calibration`, the run's chunks). Returns the files written (each with its `.bin` beside it)."""
    require_openvino(int8)
    texts = [t for t in calibration if t.strip()]
    if int8 and not texts:
        raise OpenVinoError("OpenVINO int8 is calibrated on the run's chunks, and none were given")
    import openvino as ov
    import torch

    layout = read_layout(Path(model_dir))
    module, inputs = _traceable(layout)
    try:
        # The tracer warns about Python branches on shapes (BERT's causal-mask checks), which an encoder never takes.
        with torch.no_grad(), _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ov.convert_model(_last_hidden(module), example_input=inputs)
    except Exception as e:  # the converter raises many unrelated types for a model it cannot trace
        reason = (str(e).strip().splitlines() or [""])[0][:300]
        raise OpenVinoError(f"OpenVINO cannot convert {layout.transformer_dir} ({type(e).__name__}: {reason})") from e
    # The same output name as the ONNX export and optimum's OVModelForFeatureExtraction.
    model.outputs[0].get_tensor().set_names({OUTPUT})
    out_dir = layout.transformer_dir / OV_DIR
    out_dir.mkdir(exist_ok=True)
    written = [out_dir / FP32_FILE]
    ov.save_model(model, str(written[0]), compress_to_fp16=False)
    if int8:
        written.append(quantize_int8(model, out_dir / INT8_FILE, layout, texts))
    return written


def quantize_int8(model: object, target: Path, layout: object, texts: Sequence[str]) -> Path:
    """Static int8 of the converted `model` with NNCF's transformer preset (smooth quant, per-channel weights),
    ranges measured on up to 64 of `texts` spread over them. Returns `target`."""
    import nncf
    import openvino as ov

    names = {i.get_any_name() for i in model.inputs}  # type: ignore[attr-defined]
    batches = [
        {k: v for k, v in b.items() if k in names} for b in calibration_batches(layout, calibration_sample(texts))
    ]
    with _quiet():
        quantized = nncf.quantize(
            model, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches)
        )
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    return target


class OpenVinoEncoder(OnnxEncoder):
    """Encode texts with an OpenVINO model file (`file` is under `<transformer folder>/openvino/`; an ONNX file
    also loads, e.g. "../onnx/model.onnx"), as the folder's SentenceTransformer would.

    `precision` is OpenVINO's inference precision hint: None keeps the CPU's default (bf16 on CPUs with
    AVX512-BF16 or AMX, else f32); "f32" computes as torch does.

    >>> OpenVinoEncoder(RUN / "model").encode(["zero trust", "risk"]).shape   # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self, model_dir: str | Path, file: str = INT8_FILE, threads: int = 0, precision: str | None = None
    ) -> None:
        require_openvino()
        import openvino as ov

        self.layout = read_layout(Path(model_dir))
        path = self.layout.transformer_dir / OV_DIR / file
        if not path.is_file():
            int8 = " --int8" if file == INT8_FILE else ""
            raise OpenVinoError(f"{path} does not exist: run `ragtune export RUN --openvino{int8}` first")
        self.tokenizer, self.max_seq_length = _load_tokenizer(self.layout)
        # LATENCY: one stream using all the threads, as encode sends one batch at a time.
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        try:
            compiled = ov.Core().compile_model(str(path), "CPU", config)
        except RuntimeError as e:  # OpenVINO reports unreadable or unsupported files as RuntimeError
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise OpenVinoError(f"OpenVINO cannot load {path} ({first}); export it again") from None
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "bf16", "f32"
        self.request = compiled.create_infer_request()
        self.output = compiled.output(OUTPUT)
        self.input_names = [i.get_any_name() for i in compiled.inputs]

    def _hidden(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(feed)[self.output]
