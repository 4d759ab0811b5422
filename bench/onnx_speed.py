"""Encode speed and hit@5 of the ONNX and OpenVINO exports (fp32, int8) against torch, side by side.

    python -m bench.onnx_speed [RUN_DIR] [--rounds 3] [--threads 2] [--limit 0] [--single 48]
                                  [--bench ../shared/bench/nist_ragas_test100.csv] [--arms int8 dyn,ov int8]

The model is RUN_DIR/model if given, else the bundled all-MiniLM-L6-v2. It is copied to a
temporary folder and exported there (`export_onnx(..., quantize=True, calibration=texts)`, as
`ragtune export RUN --onnx --int8` does with the run's chunks), so the run is only read.

Speed: the same texts (the run's chunks.jsonl, else resources/*.pdf through ragtune's own
extractor and chunker at the Config defaults) are encoded by sentence-transformers on torch
(fp32, normalised) and by OnnxEncoder on model.onnx, model_qint8.onnx and model_qint8_static.onnx,
and, when openvino and nncf are installed, by OpenVinoEncoder on model.onnx ("ov fp32"), on the static
QDQ file ("ov qdq"), and on ragtune's OpenVINO int8 export ("ov int8": `export_openvino(..., int8=True,
calibration=texts)`, as `ragtune export RUN --openvino --int8` does), one after the other in each round, the order reversed every other round; at batch 32 over all
the texts, then at batch 1 over the first --single texts. The ratio is the median over rounds of
torch's seconds / the engine's seconds in the same round, so a busy machine slows both sides of
each ratio alike. torch.set_num_threads, onnxruntime's intra-op threads and OpenVINO's inference threads are all --threads;
OpenVINO keeps its default inference precision (printed: bf16 on a CPU with AVX512-BF16).

Quality: hit@5 on the third-party RAGAS questions over NIST AI 600-1, with bench/common.py's
relevance rule: the run's own chunks when the run is over that PDF, else the PDF chunked by
ragtune. Exact cosine search, one vector per chunk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_BENCH, load_bench, relevant_sets
from ragtune.records import Chunk, read_jsonl

REPO = Path(__file__).resolve().parents[1]
NIST_PDF = Path("/work/shared/docs/nist_ai_600_1.pdf")
KS = (1, 5, 10)
# The engines timed beside torch; --arms picks some (each loaded engine holds its own buffers: on a shared machine
# all six at batch 32 ran out of memory).
ARMS = ("onnx fp32", "int8 dyn", "int8 static", "ov fp32", "ov qdq", "ov int8")


def chunk_pdfs(pdfs: list[Path], model: Any) -> list[Chunk]:
    """PDFs through ragtune's extractor and chunker, with the Config defaults."""
    from ragtune.chunk import chunk_pages
    from ragtune.config import Config
    from ragtune.extract import extract_folder

    defaults = {
        f: Config.__dataclass_fields__[f].default for f in ("chunk_tokens", "chunk_overlap", "min_chunk_tokens")
    }
    pages = [p for pdf in pdfs for p in extract_folder(pdf).pages]
    return chunk_pages(
        pages,
        model.tokenizer,
        defaults["chunk_tokens"],
        defaults["chunk_overlap"],
        model.max_seq_length - 2,
        defaults["min_chunk_tokens"],
    ).chunks


def hits(chunk_vecs: Any, chunk_ids: list[str], q_vecs: Any, relevant: list[set[str]]) -> dict[str, float]:
    from ragtune.metrics import rank_metrics

    top = (-(q_vecs @ chunk_vecs.T)).argsort(axis=1)[:, : max(KS + (10,))]
    return rank_metrics([[chunk_ids[i] for i in row] for row in top], relevant, KS)


def openvino_engines(model_dir: Path, texts: list[str], threads: int, arms: set[str]) -> dict[str, Any]:
    """OpenVINO on the fp32 and static QDQ ONNX files, and on ragtune's own OpenVINO int8 export; none
    when openvino or nncf is missing (said in one line)."""
    from ragtune.errors import OpenVinoError
    from ragtune.onnx_export import STATIC_INT8_FILE
    from ragtune.openvino_export import FP32_FILE, INT8_FILE, OpenVinoEncoder, export_openvino, require_openvino

    try:
        require_openvino(int8=True)
    except OpenVinoError as e:
        print(f"OpenVINO arms left out: {e}")
        return {}
    t = time.perf_counter()
    written = export_openvino(model_dir, int8=True, calibration=texts)
    export_s = time.perf_counter() - t
    engines: dict[str, Any] = {}
    for label, file in (
        ("ov fp32", "../onnx/model.onnx"),
        ("ov qdq", f"../onnx/{STATIC_INT8_FILE}"),
        ("ov int8", INT8_FILE),
    ):
        if label not in arms:
            continue
        enc = OpenVinoEncoder(model_dir, file, threads=threads)
        engines[label] = lambda texts, bs, enc=enc: enc.encode(texts, batch_size=bs, normalize_embeddings=True)
    sizes = ", ".join(
        f"{p.name} {(p.stat().st_size + p.with_suffix('.bin').stat().st_size) / 1e6:.1f} MB" for p in written
    )
    print(
        f"openvino {__import__('openvino').__version__}, nncf {__import__('nncf').__version__}, inference precision "
        f"{enc.precision}; export {export_s:.0f}s: {sizes} (xml + bin; {FP32_FILE} is not timed: ov fp32 runs model.onnx)"
    )
    return engines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="time only the first N texts (0: all)")
    ap.add_argument("--single", type=int, default=48, help="texts timed one at a time (batch 1)")
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--arms", default=",".join(ARMS), help=f"engines to time beside torch, of: {', '.join(ARMS)}")
    args = ap.parse_args()
    arms = {a.strip() for a in args.arms.split(",") if a.strip()}
    if not arms <= set(ARMS):
        ap.error(f"--arms: {', '.join(sorted(arms - set(ARMS)))} not in {', '.join(ARMS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import numpy as np
    import torch

    from ragtune.models import bundled_model_path, load_model
    from ragtune.onnx_export import INT8_FILE, STATIC_INT8_FILE, OnnxEncoder, export_onnx

    torch.set_num_threads(args.threads)
    source = args.run_dir / "model" if args.run_dir else bundled_model_path()
    work = Path(tempfile.mkdtemp(prefix="ragtune_onnx_bench_"))
    try:
        model_dir = work / "model"
        shutil.copytree(source, model_dir, ignore=shutil.ignore_patterns("onnx"))
        st = load_model(str(model_dir), "cpu")
        run_chunks = read_jsonl(args.run_dir / "chunks.jsonl", Chunk) if args.run_dir else None
        texts = (
            [c.text for c in run_chunks]
            if run_chunks
            else [c.text for c in chunk_pdfs(sorted((REPO / "resources").glob("*.pdf")), st)]
        )
        if args.limit:
            texts = texts[: args.limit]
        t = time.perf_counter()
        written = export_onnx(model_dir, quantize=True, calibration=texts)
        export_s = time.perf_counter() - t
        engines: dict[str, Any] = {
            "torch fp32": lambda texts, bs: st.encode(
                texts, batch_size=bs, normalize_embeddings=True, show_progress_bar=False
            ),
        }
        for label, file in (("onnx fp32", "model.onnx"), ("int8 dyn", INT8_FILE), ("int8 static", STATIC_INT8_FILE)):
            if label not in arms:
                continue
            enc = OnnxEncoder(model_dir, file, threads=args.threads)
            engines[label] = lambda texts, bs, enc=enc: enc.encode(texts, batch_size=bs, normalize_embeddings=True)
        print(
            f"model: {source} ({'run' if args.run_dir else 'bundled base'}); export {export_s:.0f}s: "
            + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in written)
        )
        if arms & {"ov fp32", "ov qdq", "ov int8"}:
            engines.update(openvino_engines(model_dir, texts, args.threads, arms))
        print(
            f"speed texts: {len(texts)} ({'the run chunks' if run_chunks else 'resources/*.pdf chunks'}), "
            f"{args.threads} threads for torch, onnxruntime and OpenVINO alike, {args.rounds} rounds alternating, "
            f"max_seq_length {st.max_seq_length}; torch {torch.__version__}, "
            f"onnxruntime {__import__('onnxruntime').__version__}"
        )

        vecs: dict[str, Any] = {}
        for bs, sample in ((32, texts), (1, texts[: args.single])):
            times: dict[str, list[float]] = {k: [] for k in engines}
            for r in range(args.rounds):
                # Alternate the order, so no engine always runs first (warm caches) or last.
                for label in list(engines) if r % 2 == 0 else list(engines)[::-1]:
                    t = time.perf_counter()
                    out = engines[label](sample, bs)
                    times[label].append(time.perf_counter() - t)
                    if bs == 32:
                        vecs[label] = out
            print(f"\nbatch {bs}, {len(sample)} texts")
            print(f"{'encoder':<12}{'texts/s':>9}{'x torch':>9}{'cos min':>9}{'cos mean':>9}   seconds per round")
            for label, ts in times.items():
                ratio = statistics.median(b / t for b, t in zip(times["torch fp32"], ts))
                cos = (vecs[label] * vecs["torch fp32"]).sum(1)
                print(
                    f"{label:<12}{len(sample) / statistics.median(ts):>9.1f}{ratio:>9.2f}"
                    f"{cos.min():>9.4f}{cos.mean():>9.4f}   " + " ".join(f"{t:.1f}" for t in ts)
                )

        if not args.bench.exists() or not NIST_PDF.exists():
            print(f"\nhit@5 skipped: {args.bench} or {NIST_PDF} not found")
            return 0
        sources = {c.source for c in run_chunks} if run_chunks else set()
        corpus = run_chunks if sources == {NIST_PDF.name} else chunk_pdfs([NIST_PDF], st)
        bench = load_bench(args.bench)
        rel = relevant_sets(corpus, bench)
        keep = [i for i, r in enumerate(rel) if r]
        questions, relevant = [bench[i][0] for i in keep], [rel[i] for i in keep]
        ids = [c.id for c in corpus]
        same = [c.text for c in corpus] == texts
        print(
            f"\nhit@k on {args.bench.name}: {len(keep)} of {len(bench)} questions with a relevant chunk, "
            f"{len(corpus)} chunks of {NIST_PDF.name} ({'the run chunks' if corpus is run_chunks else 'ragtune chunking'})"
        )
        print(f"{'encoder':<12}" + "".join(f"{'hit@' + str(k):>9}" for k in KS) + f"{'mrr@10':>9}")
        for label, encode in engines.items():
            chunk_vecs = vecs[label] if same else encode([c.text for c in corpus], 32)
            m = hits(np.asarray(chunk_vecs), ids, np.asarray(encode(questions, 32)), relevant)
            print(f"{label:<12}" + "".join(f"{m[f'hit@{k}']:>9.3f}" for k in KS) + f"{m['mrr@10']:>9.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
