"""ONNX export of a sentence-transformers folder, and a small encoder that runs it on CPU with onnxruntime.

    export_onnx(RUN / "model")                 -> [RUN/model/onnx/model.onnx]
    export_onnx(RUN / "model", quantize=True)  -> [... model.onnx, ... model_qint8.onnx]
    export_onnx(RUN / "model", quantize=True, calibration=chunk_texts)
                                               -> [..., ... model_qint8.onnx, ... model_qint8_static.onnx]
    OnnxEncoder(RUN / "model").encode(["zero trust"]).shape  -> (1, 384)

Only the transformer goes into the ONNX file (inputs input_ids, attention_mask and, for BERT-like
models, token_type_ids; output last_hidden_state), in the folder layout sentence-transformers and
optimum use: `<model>/onnx/model.onnx`. So `SentenceTransformer(dir, backend="onnx")` should load it
once optimum supports transformers 5; today its backend needs optimum, whose releases pin
transformers < 4.58, so ragtune runs the file itself with `OnnxEncoder` (pooling and normalisation
as the folder's own config says). Needs `pip install 'ragtune[onnx]'`.
"""

from __future__ import annotations

import inspect
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OnnxError

INSTALL_HINT = "pip install 'ragtune[onnx]'"
FP32_FILE = "model.onnx"
INT8_FILE = "model_qint8.onnx"  # plain name: per-channel int8 weights, not tuned to one CPU's instructions
# Static int8: activation scales fixed from calibration texts (the run's chunks), so no per-batch range search.
STATIC_INT8_FILE = "model_qint8_static.onnx"
CALIBRATION_TEXTS = 64  # calibration time grows with the count; 64 chunks gave MiniLM 0.994 mean cosine to fp32
CALIBRATION_BATCH = 8
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# The pre-v6 sentence-transformers pooling config: one boolean per mode.
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def require_onnx() -> None:
    """Raise one OnnxError naming the install command if onnxruntime, onnx or onnxscript is missing."""
    for name in ("onnxruntime", "onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            raise OnnxError(
                f"ONNX export needs onnxruntime, onnx and onnxscript ({name} is missing): {INSTALL_HINT}"
            ) from None


@dataclass(frozen=True)
class Layout:
    """What a sentence-transformers folder says about its modules: where the transformer lives,
    how to pool, whether to normalise, and where to truncate."""

    transformer_dir: Path
    pooling: tuple[str, ...]
    normalize: bool
    max_seq_length: int | None  # None: take the tokenizer's own limit, capped as sentence-transformers does
    do_lower_case: bool


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OnnxError(f"{path} is missing: pass a sentence-transformers model folder (RUN/model)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OnnxError(f"{path} is not valid JSON ({e}); save the model again") from None


def _pooling_modes(config: dict[str, Any], path: Path) -> tuple[str, ...]:
    """The pooling modes a 1_Pooling/config.json names, new style or old.

    >>> _pooling_modes({"pooling_mode": "mean"}, Path("c")), _pooling_modes({"pooling_mode_cls_token": True}, Path("c"))
    (('mean',), ('cls',))
    """
    mode = config.get("pooling_mode")
    if mode is None:
        mode = [m for key, m in _LEGACY_POOLING.items() if config.get(key)] or ["mean"]
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if not modes or unknown:
        raise OnnxError(f"{path}: pooling mode {unknown or modes} is not one of {', '.join(POOLING_MODES)}")
    # include_prompt needs no handling: this encoder never prepends a prompt.
    return modes


def read_layout(model_dir: Path) -> Layout:
    """Read modules.json and the module configs; refuse, in one line, any module this encoder cannot run."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise OnnxError(f"{model_dir} does not exist: pass a sentence-transformers model folder (RUN/model)")
    modules = _read_json(model_dir / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise OnnxError(f"{model_dir / 'modules.json'} is not a list of modules; save the model again")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds:
        raise OnnxError(f"{model_dir} is not a Transformer + Pooling model (modules: {', '.join(kinds) or 'none'})")
    other = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if other or kinds.count("Transformer") > 1 or kinds.count("Pooling") > 1:
        raise OnnxError(
            f"{model_dir} has modules ONNX export does not cover ({', '.join(kinds)}); "
            "it exports Transformer, Pooling and Normalize only"
        )
    transformer_dir = model_dir / str(modules[0].get("path", ""))
    pooling_dir = model_dir / str(modules[kinds.index("Pooling")].get("path", ""))
    st_config = transformer_dir / "sentence_bert_config.json"
    st = _read_json(st_config) if st_config.is_file() else {}
    max_len = st.get("max_seq_length") if isinstance(st, dict) else None
    return Layout(
        transformer_dir=transformer_dir,
        pooling=_pooling_modes(_read_json(pooling_dir / "config.json"), pooling_dir / "config.json"),
        normalize="Normalize" in kinds,
        max_seq_length=max_len if isinstance(max_len, int) and max_len > 0 else None,
        do_lower_case=bool(isinstance(st, dict) and st.get("do_lower_case")),
    )


def _load_tokenizer(layout: Layout) -> tuple[Any, int]:
    """The folder's tokenizer and its truncation length, set the way sentence-transformers sets them:
    sentence_bert_config's max_seq_length if given, else the tokenizer's limit capped at the positions."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(layout.transformer_dir))
    if layout.max_seq_length is not None:
        max_len = layout.max_seq_length
    else:
        positions = getattr(AutoConfig.from_pretrained(str(layout.transformer_dir)), "max_position_embeddings", -1)
        max_len = tokenizer.model_max_length
        if isinstance(positions, int) and positions > 0:
            max_len = min(max_len, positions)
    if layout.do_lower_case:
        from tokenizers.normalizers import Lowercase
        from tokenizers.normalizers import Sequence as NormalizerSequence

        backend = tokenizer.backend_tokenizer
        backend.normalizer = (
            NormalizerSequence([Lowercase(), backend.normalizer]) if backend.normalizer else Lowercase()
        )
    return tokenizer, int(max_len)


def _last_hidden(model: Any) -> Any:
    """`model` as a module that takes the tokenizer's tensors and returns last_hidden_state only."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
        ) -> torch.Tensor:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    return LastHidden().eval()


@contextmanager
def _quiet() -> Iterator[None]:
    """Hold back the exporter's and quantizer's advice (torchvision ops skipped, axis names merged,
    "consider pre-processing"), which says nothing about the result; levels are put back after."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _traceable(layout: Layout) -> tuple[Any, dict[str, Any]]:
    """The folder's transformer in eval mode, and an example batch of the inputs it takes (by name), to trace it."""
    import torch
    from transformers import AutoModel

    tokenizer, _ = _load_tokenizer(layout)
    try:
        # Same refusals as everywhere else in ragtune: no remote code, safetensors only.
        model = AutoModel.from_pretrained(str(layout.transformer_dir), trust_remote_code=False, use_safetensors=True)
    except (OSError, ValueError) as e:
        raise OnnxError(f"cannot load the transformer in {layout.transformer_dir}: {e}") from None
    model.eval()
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in INPUTS if n in accepted and (n in tokenizer.model_input_names or n == "attention_mask")]
    if "input_ids" not in names:
        raise OnnxError(f"{layout.transformer_dir} does not take input_ids; only text models can be exported")
    # Two texts of different lengths, so the example batch is padded like real ones.
    example = tokenizer(["zero trust architecture", "risk"], padding=True, return_tensors="pt")
    return model, {n: example[n] if n in example else torch.zeros_like(example["input_ids"]) for n in names}


def export_onnx(model_dir: str | Path, quantize: bool = False, calibration: Sequence[str] = ()) -> list[Path]:
    """Write `<transformer folder>/onnx/model.onnx` (fp32) and, with `quantize`, `model_qint8.onnx`
    (dynamic int8, per-channel weights) and, when `calibration` texts are given (the run's chunks),
    `model_qint8_static.onnx` (static int8 calibrated on them). Returns the files written."""
    require_onnx()
    import torch

    layout = read_layout(Path(model_dir))
    model, inputs = _traceable(layout)
    names = list(inputs)
    out_dir = layout.transformer_dir / "onnx"
    out_dir.mkdir(exist_ok=True)
    fp32 = out_dir / FP32_FILE
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    try:
        with torch.no_grad(), _quiet():
            torch.onnx.export(
                _last_hidden(model),
                (),
                str(fp32),
                kwargs=inputs,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamo=True,
                external_data=False,
                verbose=False,
                dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
            )
    except Exception as e:  # torch.export raises many unrelated types for a model it cannot trace
        reason = (str(e).strip().splitlines() or [""])[0][:300]
        raise OnnxError(f"torch.onnx cannot export {layout.transformer_dir} ({type(e).__name__}: {reason})") from e
    written = [fp32]
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Per-channel weights: per-tensor int8 cost MiniLM up to 0.13 cosine on some texts.
        with _quiet():
            quantize_dynamic(str(fp32), str(out_dir / INT8_FILE), weight_type=QuantType.QInt8, per_channel=True)
        written.append(out_dir / INT8_FILE)
        texts = [t for t in calibration if t.strip()]
        if texts:
            written.append(quantize_static_int8(fp32, out_dir / STATIC_INT8_FILE, layout, texts))
    return written


def calibration_sample(texts: Sequence[str], n: int = CALIBRATION_TEXTS) -> list[str]:
    """At most `n` texts spread evenly over `texts` (a run's chunks go document by document, so the
    first n would calibrate on the first document only).

    >>> calibration_sample([str(i) for i in range(10)], 4)
    ['0', '2', '5', '7']
    """
    if len(texts) <= n:
        return list(texts)
    return [texts[i * len(texts) // n] for i in range(n)]


def calibration_batches(layout: Layout, texts: Sequence[str], batch_size: int = CALIBRATION_BATCH) -> list[dict]:
    """The model's inputs for `texts`, tokenized and truncated as OnnxEncoder does, in padded batches."""
    tokenizer, max_len = _load_tokenizer(layout)
    batches = []
    for s in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[s : s + batch_size]), padding=True, truncation=True, max_length=max_len, return_tensors="np"
        )
        mask = enc["attention_mask"].astype(np.int64)
        batches.append({n: (enc[n] if n in enc else np.zeros_like(mask)).astype(np.int64) for n in INPUTS})
    return batches


def _static_exclusions(model: Any) -> list[str]:
    """MatMul nodes static int8 must leave in fp32, by name.

    - Products of two activations (attention scores, scores x values): their ranges change with every
      text, and a fixed scale for softmax outputs costs most of the accuracy.
    - Linear layers that narrow (input wider than output: the feed-forward down-projection): their input
      is the GELU output, whose few large outliers a per-tensor scale cannot hold. With them in int8,
      MiniLM's mean cosine to fp32 on NIST chunks was 0.943; without them, 0.994 (dynamic int8: 0.994).
    """
    graph = model.graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    constants = set(shapes) | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    out = []
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        weights = [shapes.get(x) for x in node.input if x in constants]
        if not weights or any(w is not None and len(w) == 2 and w[0] > w[1] for w in weights):
            out.append(node.name)
    return out


def quantize_static_int8(fp32: Path, target: Path, layout: Layout, texts: Sequence[str]) -> Path:
    """Static int8 (QDQ, per-channel weights, uint8 activations) of `fp32`, its activation ranges measured
    on `texts`. Returns `target`."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, batches: list[dict]) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    model = onnx.load(str(fp32))
    names = {i.name for i in model.graph.input}
    batches = [
        {k: v for k, v in b.items() if k in names} for b in calibration_batches(layout, calibration_sample(texts))
    ]
    with _quiet():
        quantize_static(
            str(fp32),
            str(target),
            Reader(batches),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_static_exclusions(model),
        )
    return target


def _pool(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Pool token vectors (batch, seq, dim) under a right-padded 0/1 mask, modes concatenated.

    >>> h = np.array([[[1.0], [3.0], [9.0]]]); m = np.array([[1, 1, 0]])
    >>> _pool(h, m, ["mean", "cls", "max", "lasttoken"]).tolist()
    [[2.0, 1.0, 3.0, 3.0]]
    """
    m = mask[..., None].astype(hidden.dtype)
    counts = np.clip(m.sum(1), 1e-9, None)
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(hidden[np.arange(len(hidden)), mask.argmax(1)])
        elif mode == "max":
            out.append(np.where(m > 0, hidden, -np.inf).max(1))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            out.append((hidden * m).sum(1) / (counts if mode == "mean" else np.sqrt(counts)))
        elif mode == "weightedmean":
            w = m * np.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype)[None, :, None]
            out.append((hidden * w).sum(1) / np.clip(w.sum(1), 1e-9, None))
        elif mode == "lasttoken":
            last = mask.shape[1] - 1 - mask[:, ::-1].argmax(1)
            out.append(hidden[np.arange(len(hidden)), last])
    return np.concatenate(out, axis=-1)


class OnnxEncoder:
    """Encode texts with an exported ONNX file, as the folder's SentenceTransformer would.

    >>> OnnxEncoder(RUN / "model").encode(["zero trust", "risk"]).shape   # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model_dir: str | Path, file: str = FP32_FILE, threads: int = 0) -> None:
        require_onnx()
        import onnxruntime as ort

        self.layout = read_layout(Path(model_dir))
        path = self.layout.transformer_dir / "onnx" / file
        if not path.is_file():
            raise OnnxError(
                f"{path} does not exist: run `ragtune export RUN --onnx{' --int8' if file != FP32_FILE else ''}` first"
            )
        self.tokenizer, self.max_seq_length = _load_tokenizer(self.layout)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime's load errors subclass Exception directly
            raise OnnxError(f"onnxruntime cannot load {path} ({type(e).__name__}: {e}); export it again") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        mask = enc["attention_mask"].astype(np.int64)
        feed = {n: (enc[n] if n in enc else np.zeros_like(mask)).astype(np.int64) for n in self.input_names}
        return _pool(self._hidden(feed), mask, self.layout.pooling)

    def _hidden(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """last_hidden_state for one tokenized batch (the engine's part; OpenVinoEncoder runs its own)."""
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return hidden

    def encode(self, texts: Sequence[str], batch_size: int = 32, normalize_embeddings: bool = True) -> np.ndarray:
        """One float32 row per text, in the order given."""
        if isinstance(texts, str):
            texts = [texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        # Longest first, so each batch pads to texts of about its own length; the order is put back below.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        parts = [self._batch([texts[i] for i in order[s : s + batch_size]]) for s in range(0, len(order), batch_size)]
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(parts)
        if normalize_embeddings or self.layout.normalize:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out
