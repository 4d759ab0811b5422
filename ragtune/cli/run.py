"""`ragtune run`: its flags (grouped by stage, each mapped onto a Config field), the handler, and the lines it
prints at the end of a run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import AUTO, DEFAULT_EXCLUDE, GENERATORS, PRECISIONS, Config
from ..hub import resolve_token
from ..llamaindex_dataset import add_dataset_metrics, load_llamaindex_dataset
from ..metrics import cutoff_advice, metrics_text_table, retriever_rows
from ..names import BASE, FINE_TUNED
from ..pairs import load_pairs_file
from ..pipeline import Pipeline
from ..progress import ProgressReporter
from ..rundir import check_out_dir
from ..themes import load_lexicon
from ..training.forgetting import guard_line
from .console import DEVICE_HELP, check_output
from .push import _push


def _fmt_table(metrics: dict[str, Any]) -> str:
    return metrics_text_table(metrics)


def _print_advice(metrics: dict[str, Any], report: Path) -> None:
    """The honest end of a run in one line: which retriever did best here, what `Retriever` serves, where to
    read more; and a warning when score cutoffs moved."""
    label, best = max(retriever_rows(metrics), key=lambda row: (row[1]["hit@5"], row[1]["mrr@10"]))
    w = metrics.get("hybrid_weight")
    share = f" ({w:.1f} : {1 - w:.1f})" if isinstance(w, (int, float)) else ""
    served = {
        "hybrid": f"the hybrid of the model and BM25{share}",
        "dense": "the fine-tuned model",
        "bm25": "BM25 alone",
    }.get(metrics.get("recommended_mode", ""), "the fine-tuned model")
    print(
        f"Best on these held-out questions: {label} (hit@5 {best['hit@5']:.3f}, MRR@10 {best['mrr@10']:.3f}); "
        f"ragtune.Retriever serves {served}. Why, and what to use: {report}"
    )
    sim = metrics.get("similarity") or {}
    if sim.get("warn"):
        print(f"Warning: {cutoff_advice(sim[BASE]['median'], sim[FINE_TUNED]['median'])} (See the model card.)")


def _weight_or_auto(text: str) -> float | None:
    """ "auto" -> None (chosen on the validation questions); "0.6" -> 0.6."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, or auto, got {text!r}") from None


def _int_list(text: str) -> tuple[int, ...]:
    """ "256,128" -> (256, 128)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """The `run` flags, grouped by stage; every one has help, and the help shows its default."""
    d = Config(docs=Path("."))
    p.add_argument("docs", type=Path, metavar="DOCS", help="folder of PDF, .txt and .md files (or one file)")
    p.add_argument("--out", type=Path, default=d.out, metavar="DIR", help="run directory")

    g = p.add_argument_group("input and chunking")
    g.add_argument(
        "--base-model",
        default=AUTO,
        metavar="MODEL",
        help="local path or Hub id of a sentence-transformers model (auto: the bundled all-MiniLM-L6-v2)",
    )
    g.add_argument("--extractor", choices=("pypdf", "pypdfium2"), default=d.extractor, help="PDF text extractor")
    g.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="read only the files matching this glob (path under DOCS or file name, any case); repeat for "
        "more; an included file is read even if it matches --exclude",
    )
    g.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help=f"also leave out files matching this glob; repeat for more (left out unless included: "
        f"{', '.join(d.exclude)})",
    )
    g.add_argument("--chunk-tokens", type=int, default=d.chunk_tokens, metavar="N", help="chunk size in model tokens")
    g.add_argument("--chunk-overlap", type=int, default=d.chunk_overlap, metavar="N", help="overlap in model tokens")
    g.add_argument(
        "--themes",
        type=Path,
        default=None,
        dest="themes_file",
        metavar="FILE",
        help="YAML or TOML: theme -> keywords (default: the built-in lexicon)",
    )

    g = p.add_argument_group("questions")
    g.add_argument("--generator", choices=GENERATORS, default=d.generator, help="how questions are written")
    g.add_argument(
        "--questions-per-chunk",
        type=int,
        default=d.questions_per_chunk,
        metavar="N",
        help="questions written per chunk",
    )
    g.add_argument(
        "--lexical-per-chunk",
        type=int,
        default=d.lexical_per_chunk,
        metavar="N",
        help="BM25-labelled spans of each training chunk's sentences to train on as well (0: off)",
    )
    g.add_argument(
        "--near-duplicate",
        type=float,
        default=d.near_duplicate,
        metavar="X",
        help="drop a question this similar to another of its chunk (1.0: off)",
    )
    g.add_argument(
        "--round-trip-k",
        type=int,
        default=d.round_trip_k,
        metavar="N",
        help="drop a training question whose chunk BM25 does not rank in the top N (0: off); "
        "held-out and validation questions are never filtered",
    )

    g = p.add_argument_group("LLM question generators (--generator openai or local)")
    g.add_argument(
        "--llm-base-url",
        default=d.llm_base_url,
        metavar="URL",
        help="any OpenAI-compatible server (vLLM, Ollama, llama.cpp: http://host:port/v1); the key comes "
        "from OPENAI_API_KEY",
    )
    g.add_argument(
        "--llm-model",
        default=d.llm_model,
        metavar="MODEL",
        help="openai: the model name; local: a model folder, a .gguf file, or smollm2",
    )
    g.add_argument(
        "--llm-concurrency", type=int, default=d.llm_concurrency, metavar="N", help="requests in flight at once"
    )
    g.add_argument(
        "--llm-timeout", type=float, default=d.llm_timeout, metavar="SECONDS", help="seconds to wait for one reply"
    )
    g.add_argument(
        "--llm-retries",
        type=int,
        default=d.llm_retries,
        metavar="N",
        help="retries of a timeout, dropped connection, 429 or 5xx (exponential backoff)",
    )

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=float, default=d.epochs, metavar="X", help="passes over the training questions")
    g.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        metavar="N",
        help="rows per batch, each one chunk with 4 questions",
    )
    g.add_argument("--lr", type=float, default=d.learning_rate, dest="learning_rate", metavar="X", help="learning rate")
    g.add_argument(
        "--warmup-ratio", type=float, default=d.warmup_ratio, metavar="X", help="share of the steps spent warming up"
    )
    g.add_argument(
        "--long-inputs",
        type=float,
        default=d.long_inputs,
        metavar="X",
        help="share of the training rows whose positive is a long window: the chunk with its neighbours, up to "
        "the model's length (512 tokens at most), which the saved model reads (0: off)",
    )
    g.add_argument(
        "--pairs",
        type=Path,
        action="append",
        default=[],
        dest="pairs_files",
        metavar="FILE",
        help="labelled pairs (CSV/JSONL: sentence1,sentence2,label) to train on alongside the questions; "
        "repeat for more files",
    )
    g.add_argument("--pairs-loss", choices=("cosine", "cosent", "angle"), default=d.pairs_loss, help="loss for --pairs")
    g.add_argument(
        "--hard-negatives",
        action=argparse.BooleanOptionalAction,
        default=d.hard_negatives,
        help="train with one mined hard negative per chunk",
    )
    g.add_argument(
        "--same-theme-negatives",
        action=argparse.BooleanOptionalAction,
        default=d.same_theme_negatives,
        help="with --hard-negatives: prefer a negative on the same theme as the chunk",
    )
    g.add_argument(
        "--mini-batch-size",
        type=int,
        default=d.mini_batch_size,
        metavar="N",
        help="encode this many texts at a time with gradient caching, for batches larger than memory allows (0: off)",
    )
    g.add_argument(
        "--matryoshka-dims",
        type=_int_list,
        default=d.matryoshka_dims,
        metavar="N,N,...",
        help="also train and report these truncated embedding sizes, e.g. 256,128,64",
    )
    g.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N", help="cap on training steps (-1: none)")
    g.add_argument(
        "--distil-steps",
        type=int,
        default=d.distil_steps,
        metavar="N",
        help="then this many steps teaching the single vector the hybrid's ranking (0: off)",
    )
    g.add_argument(
        "--time-budget",
        default=d.time_budget,
        metavar="DURATION",
        help="fit the whole run in this time (30m, 90s, 1h): it measures a few steps and chooses steps, "
        "questions per chunk and passages, and says what it chose",
    )
    g.add_argument("--seed", type=int, default=d.seed, metavar="N", help="seed of every random choice")
    g.add_argument("--device", default=AUTO, metavar="DEVICE", help=DEVICE_HELP)
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="training arithmetic (auto: bf16 or fp16 on a GPU, bf16 on a CPU that has it, else fp32)",
    )

    g = p.add_argument_group("model selection")
    g.add_argument(
        "--test-fraction",
        type=float,
        default=d.eval_fraction,
        dest="eval_fraction",
        metavar="X",
        help="share of chunks whose questions are held out as the test set",
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        metavar="X",
        help="share of chunks whose questions pick the checkpoint and the mix (0: no validation)",
    )
    g.add_argument(
        "--validations",
        type=int,
        default=d.evals,
        dest="evals",
        metavar="N",
        help="validations (and checkpoints) over training",
    )
    g.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        metavar="N",
        help="stop after this many validations without improvement (0: never stop early)",
    )
    g.add_argument(
        "--wise",
        action=argparse.BooleanOptionalAction,
        default=d.wise,
        help="mix the tuned weights with the base in the share validation prefers (WiSE-FT)",
    )
    g.add_argument(
        "--wise-share",
        type=float,
        default=d.wise_share,
        metavar="X",
        help="the largest share of the change the mix keeps: validation questions favour all of it, questions "
        "people write often less (1: as validation prefers)",
    )

    g = p.add_argument_group("retrieval")
    g.add_argument(
        "--passage-words",
        type=int,
        default=d.passage_words,
        metavar="N",
        help="also index each chunk as passages of whole sentences, N words or more (0: one vector per chunk)",
    )
    g.add_argument(
        "--passage-stride",
        type=int,
        default=d.passage_stride,
        metavar="N",
        help="start a passage at every N-th sentence, so passages overlap (0: passages without overlap)",
    )
    g.add_argument(
        "--chunk-weight",
        type=float,
        default=d.chunk_weight,
        metavar="X",
        help="a chunk scores (best passage + X * its own vector) / (1 + X)",
    )
    g.add_argument(
        "--hybrid-weight",
        type=_weight_or_auto,
        metavar="X",
        default="auto" if d.hybrid_weight is None else d.hybrid_weight,
        help="the model's share of the hybrid score, BM25 taking the rest (auto: chosen on the validation "
        "questions too; which retriever is served is always chosen there)",
    )

    g = p.add_argument_group("publishing")
    g.add_argument("--push", default="", dest="push_repo", metavar="REPO_ID", help="push the model to this Hub repo")
    g.add_argument("--private", action="store_true", help="with --push: create a private repo")
    # The same publish flags as `ragtune push`; not Config fields, they only steer the push after the run.
    g.add_argument(
        "--with-data",
        action="store_true",
        help="with --push: also upload the question-chunk pairs as the dataset repo REPO_ID-pairs",
    )
    g.add_argument(
        "--force-push",
        action="store_true",
        dest="force",
        help="with --push: push even if the run did not beat the base model",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --push: give up on a Hub request (and retry it) after this many seconds without "
        "progress (default: $RAGTUNE_HUB_TIMEOUT, else 60)",
    )


# `run` flags that steer its --push and are no Config field.
PUSH_ONLY = ("with_data", "force", "timeout")


def _config_from_args(args: argparse.Namespace) -> Config:
    fields = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in vars(args).items()
        if k not in ("command", "evaluation_set", "config", "verbose", *PUSH_ONLY)
    }
    # --exclude adds to the files always left out (a folder's README, LICENSE …); --include reads one anyway.
    fields["exclude"] = tuple(dict.fromkeys(DEFAULT_EXCLUDE + fields.get("exclude", ())))
    return Config(**fields)


def _flag_aliases() -> dict[str, str]:
    """Flag names that differ from their Config field, as config-file keys: {"lr": "learning_rate", ...}."""
    p = argparse.ArgumentParser()
    _add_run_args(p)
    return {
        opt[2:].replace("-", "_"): a.dest
        for a in p._actions
        for opt in a.option_strings
        if opt.startswith("--")
        and not opt.startswith("--no-")
        and opt[2:].replace("-", "_") != a.dest
        and a.dest != "help"
    }


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config_from_args(args)
    check_output(cfg.out, "--out")  # a bad --out fails now, not after training
    check_out_dir(cfg.out, "run", cfg.docs)  # and so does one that is not this run's to write
    if cfg.push_repo:
        resolve_token()  # a push that cannot happen (no token, or a malformed one) fails before the run
    if args.evaluation_set is not None:
        load_llamaindex_dataset(args.evaluation_set)  # a malformed file fails now, not after training
    if cfg.pairs_files:
        for f in cfg.pairs_files:
            load_pairs_file(f)  # likewise for a bad labelled-pairs file
    if cfg.themes_file is not None:
        load_lexicon(cfg.themes_file)  # and for a bad themes file, before extraction
    start = time.perf_counter()
    print(f"ragtune {__version__}: {cfg.docs} -> {cfg.out}", file=sys.stderr)
    result = Pipeline(cfg, ProgressReporter(verbose=args.verbose)).run()
    m = result.metrics
    print(f"\nRetrieval on {m['n_queries']} held-out questions over {m['n_chunks']} chunks:")
    print(_fmt_table(m))
    if "pairs" in m:
        lp = m["pairs"]
        print(f"\nLabelled pairs ({lp['n_pairs']} held out), cosine vs label:")
        print(f"{'':<12}{'pearson':>9}{'spearman':>9}")
        for label, key in (("base", BASE), ("fine-tuned", FINE_TUNED)):
            print(f"{label:<12}{lp[key]['pearson']:>9.3f}{lp[key]['spearman']:>9.3f}")
    if m["improved"]:
        print(
            f"\nImproved: hit@5 {m[BASE]['hit@5']:.3f} -> {m[FINE_TUNED]['hit@5']:.3f}, "
            f"MRR@10 {m[BASE]['mrr@10']:.3f} -> {m[FINE_TUNED]['mrr@10']:.3f}."
        )
    else:
        print(
            "\nNOT IMPROVED: the fine-tuned model is not better than the base model on held-out questions. "
            "It is saved but marked as not improved; `ragtune push` refuses it without --force."
        )
    if "general" in m:
        print(guard_line(m["general"]))
    _print_advice(m, cfg.out / "report.html")
    print(
        f"Model: {cfg.out / 'model'}   metrics: {cfg.out / 'metrics.json'}   report: {cfg.out / 'report.html'}   "
        f"({time.perf_counter() - start:.0f}s)"
    )
    if args.evaluation_set is not None:
        d = add_dataset_metrics(cfg.out, args.evaluation_set, cfg.device)
        print(f"\nRetrieval on {d['n_queries']} questions from {d['file']} over {d['n_corpus']} corpus texts:")
        print(_fmt_table(d))
    if cfg.push_repo:
        return _push(
            cfg.out,
            cfg.push_repo,
            private=cfg.private,
            dry_run=False,
            force=args.force,
            with_data=args.with_data,
            timeout=args.timeout,
            from_run=True,
        )
    return 0
