"""Records per second and peak memory of `ragtune reindex` (ragtune.stores.reindex) on an embedded store.

    python -m bench.reindex_speed [--records 0] [--model bundled|tiny] [--store qdrant|chroma|lancedb]

The records are the demo's chunks (resources/*.pdf, cut as `ragtune run` cuts them: 256 tokens, 32
overlap); --records N replicates them to N records (each copy gets its own id). The app's collection
is filled with random unit vectors of the model's size: reindex never reads the old vectors (the
base-model check is skipped, as with --any-model), so they cost nothing to fake. The tuned model is
the bundled all-MiniLM-L6-v2 (`--model bundled`, what a run tunes by default) or the 2-layer, 32-wide
tiny BERT the tests use (`--model tiny`, random weights: encoding speed is not a real model's).

The reindex runs in a fresh child process, so its peak RSS (VmHWM) is its own: printed with the
RSS before it started (model loaded, store opened) and records/second over the whole call (read,
encode, write, check every id and payload).

    python -m bench.reindex_speed --store qdrant --records 2048 --writes 256,1024,64,256

times the store's writes alone (no model, random vectors): the app's records written into a new
collection per batch size, in the order given (repeat one to see the noise).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ragtune.stagecosts import status_mib

REPO = Path(__file__).resolve().parents[1]


def tiny_model(folder: Path) -> Path:
    """The tests' tiny BERT (tests/conftest.py), saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ragtune.models import bundled_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=300,
    )
    BertModel(config).save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    transformer = Transformer(str(folder / "hf"), max_seq_length=256)
    SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")]).save(
        str(folder / "st")
    )
    return folder / "st"


def demo_texts(model_dir: str) -> list[str]:
    from ragtune.chunk import chunk_pages
    from ragtune.extract import extract_folder
    from ragtune.models import load_model

    tokenizer = load_model(model_dir, "cpu").tokenizer
    pages = extract_folder(REPO / "resources").pages
    return [c.text for c in chunk_pages(pages, tokenizer, 256, 32, 256).chunks]


def build(store_kind: str, target: Path, texts: list[str], dim: int) -> None:
    """The app's collection "app": every text with a random vector, written the way each store's app would."""
    rng = np.random.default_rng(0)
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(texts))]
    for start in range(0, len(texts), 2048):
        part = slice(start, start + 2048)
        vecs = rng.normal(size=(len(texts[part]), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        if store_kind == "qdrant":
            from qdrant_client import QdrantClient, models

            client = QdrantClient(path=str(target))
            if not client.collection_exists("app"):
                client.create_collection(
                    "app", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
                )
            client.upsert(
                "app",
                points=[
                    models.PointStruct(id=i, vector=v.tolist(), payload={"page_content": t, "metadata": {"n": n}})
                    for n, (i, t, v) in enumerate(zip(ids[part], texts[part], vecs), start)
                ],
            )
            client.close()
        elif store_kind == "chroma":
            import chromadb

            col = chromadb.PersistentClient(path=str(target)).get_or_create_collection(
                "app", metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
            col.add(
                ids=ids[part],
                embeddings=vecs,
                documents=texts[part],
                metadatas=[{"n": n} for n in range(start, start + len(vecs))],
            )
        else:
            import lancedb
            import pyarrow as pa

            db = lancedb.connect(str(target))
            rows = [
                {"id": i, "text": t, "vector": v.tolist(), "n": n}
                for n, (i, t, v) in enumerate(zip(ids[part], texts[part], vecs), start)
            ]
            schema = pa.schema(
                [("id", pa.string()), ("text", pa.string()), ("vector", pa.list_(pa.float32(), dim)), ("n", pa.int64())]
            )
            table = pa.Table.from_pylist(rows, schema=schema)
            if "app" in set(getattr(db.list_tables(), "tables", [])):
                db.open_table("app").add(table)
            else:
                db.create_table("app", data=table, schema=schema)


def child(store_kind: str, target: str, model_dir: str, batch: int) -> None:
    """One reindex, measured; prints a JSON line."""
    from ragtune.models import load_model, weights_digest
    from ragtune.stores import close, open_store, reindex

    model = load_model(model_dir, "cpu")
    store = open_store(store_kind, target)
    rss = status_mib("VmRSS")
    start = last = time.perf_counter()

    def progress(done: int, total: int) -> None:
        # On stderr every 30 s, so a run stopped early (100k records with the real model take hours on a
        # small CPU) still leaves its rate so far.
        nonlocal last
        now = time.perf_counter()
        if now - last >= 30 or done == total:
            last = now
            print(
                f"  {done}/{total} records, {done / max(now - start, 1e-9):.1f}/s, RSS {status_mib('VmRSS'):.0f} MB",
                file=sys.stderr,
                flush=True,
            )

    result = reindex(store, "app", model, weights_digest(model), batch_size=batch, progress=progress)
    seconds = time.perf_counter() - start
    close(store)
    print(
        json.dumps(
            {
                "records": result.n_records,
                "seconds": round(seconds, 1),
                "records_per_s": round(result.n_records / seconds, 1),
                "rss_before_mb": round(rss),
                "peak_rss_mb": round(status_mib("VmHWM")),
            }
        )
    )


def write_speed(store_kind: str, target: Path, dim: int, sizes: list[int]) -> None:
    """Points per second of the store's `write` into a fresh collection, per upsert batch size."""
    from ragtune.stores import close, open_store

    store = open_store(store_kind, target)
    try:
        records = [r for batch in store.scan("app", None) for r in batch]
        rng = np.random.default_rng(1)
        vecs = rng.normal(size=(len(records), dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for round_, size in enumerate(sizes):
            name = f"w{round_}"
            store.create_like(name, "app", dim, {})
            start = time.perf_counter()
            for i in range(0, len(records), size):
                store.write(name, records[i : i + size], vecs[i : i + size])
            seconds = time.perf_counter() - start
            print(
                f"writes, batch {size}: {len(records) / seconds:.1f} points/s ({1000 * seconds / len(records):.1f} ms a point)",
                flush=True,
            )
    finally:
        close(store)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=0, help="replicate the demo's chunks to this many (0: as they are)")
    ap.add_argument("--model", choices=("bundled", "tiny"), default="bundled")
    ap.add_argument("--store", choices=("qdrant", "chroma", "lancedb"), default="qdrant")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--writes", help="time the store's writes alone, per batch size: e.g. 256,1024,64,256")
    ap.add_argument("--child", nargs=3, metavar=("STORE", "TARGET", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.batch_size)
        return
    from ragtune.models import bundled_model_path, load_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = str(bundled_model_path()) if args.model == "bundled" else str(tiny_model(root / "tiny"))
        texts = demo_texts(model_dir)
        n_demo = len(texts)
        if args.records:
            texts = [texts[i % n_demo] for i in range(args.records)]
        dim = load_model(model_dir, "cpu").get_embedding_dimension()
        t0 = time.perf_counter()
        build(args.store, root / "store", texts, dim)
        if args.writes:
            write_speed(args.store, root / "store", dim, [int(x) for x in args.writes.split(",")])
            return
        print(
            f"{args.store}: {len(texts)} records ({n_demo} demo chunks{' replicated' if args.records else ''}), "
            f"{args.model} model ({dim} dims), collection built in {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                __spec__.name,
                "--child",
                args.store,
                str(root / "store"),
                model_dir,
                "--batch-size",
                str(args.batch_size),
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.PIPE,  # the result line; progress goes straight to stderr
            text=True,
        )
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
