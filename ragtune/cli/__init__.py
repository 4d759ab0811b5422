"""Command line: parses flags into a Config, runs, prints. With its pairs and search
subcommands (cli/pairs.py, cli/search.py), the only code that prints.

Exit codes: 0 success, 1 failure the user can fix (one line on stderr),
130 interrupted by Ctrl-C, 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..config import DEFAULT_EXCLUDE, GENERATORS, PRECISIONS, Config, load_config_file
from ..errors import ConfigError, RagtuneError
from ..progress import ProgressReporter
from . import pairs as cli_pairs
from . import search as cli_search
from . import stores as cli_stores


def _fmt_table(metrics: dict[str, Any]) -> str:
    from ..card import retriever_rows

    keys = [k for k in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10") if k in metrics["after"]]
    rows = retriever_rows(metrics)
    width = max(len(label) for label, _ in rows) + 2
    out = [f"{'':<{width}}" + "".join(f"{k:>9}" for k in keys)]
    out += [f"{label:<{width}}" + "".join(f"{m[k]:>9.3f}" for k in keys) for label, m in rows]
    return "\n".join(out)


def _print_advice(metrics: dict[str, Any]) -> None:
    """The honest end of a run: which retriever did best here, what to use, and whether score cutoffs moved."""
    from ..card import recommendation, retriever_rows

    label, best = max(retriever_rows(metrics), key=lambda row: (row[1]["hit@5"], row[1]["mrr@10"]))
    print(f"Best on these held-out questions: {label} (hit@5 {best['hit@5']:.3f}, MRR@10 {best['mrr@10']:.3f}).")
    for line in recommendation(metrics):
        print(line)
    sim = metrics.get("similarity") or {}
    if sim.get("warn"):
        print(f"Warning: similarity scores moved (best chunk's cosine, median {sim['before']['median']:.2f} -> "
              f"{sim['after']['median']:.2f}); re-tune any fixed score cutoff in your RAG app (see the model card).")


def _int_list(text: str) -> tuple[int, ...]:
    """ "256,128" -> (256, 128)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """The `run` flags, grouped by stage; every one has help, and the help shows its default."""
    d = Config(docs=Path("."))
    p.add_argument("docs", type=Path, help="folder of PDF, .txt and .md files (or one file)")
    p.add_argument("--out", type=Path, default=d.out, help="run directory")

    g = p.add_argument_group("input and chunking")
    g.add_argument("--base-model", default=d.base_model,
                   help="local path or Hub id of a sentence-transformers model ('': the bundled all-MiniLM-L6-v2)")
    g.add_argument("--extractor", choices=("pypdf", "pypdfium2"), default=d.extractor, help="PDF text extractor")
    g.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="read only the files matching this glob (path under DOCS or file name, any case); repeat for "
                        "more; an included file is read even if it matches --exclude")
    g.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help=f"also leave out files matching this glob; repeat for more (left out unless included: "
                        f"{', '.join(d.exclude)})")
    g.add_argument("--chunk-tokens", type=int, default=d.chunk_tokens, help="chunk size in model tokens")
    g.add_argument("--chunk-overlap", type=int, default=d.chunk_overlap, help="overlap in model tokens")
    g.add_argument("--themes", type=Path, default=None, dest="themes_file",
                   help="YAML or TOML: theme -> keywords (default: the built-in lexicon)")

    g = p.add_argument_group("questions")
    g.add_argument("--generator", choices=GENERATORS, default=d.generator, help="how questions are written")
    g.add_argument("--questions-per-chunk", type=int, default=d.questions_per_chunk, help="questions written per chunk")
    g.add_argument("--lexical-per-chunk", type=int, default=d.lexical_per_chunk, metavar="N",
                   help="BM25-labelled spans of each training chunk's sentences to train on as well (0: off)")
    g.add_argument("--near-duplicate", type=float, default=d.near_duplicate, metavar="COSINE",
                   help="drop a question this similar to another of its chunk (1.0: off)")
    g.add_argument("--round-trip-k", type=int, default=d.round_trip_k, metavar="K",
                   help="drop a question whose chunk BM25 does not rank in the top K (0: off)")

    g = p.add_argument_group("LLM question generators (--generator openai or local)")
    g.add_argument("--llm-base-url", default=d.llm_base_url,
                   help="any OpenAI-compatible server (vLLM, Ollama, llama.cpp: http://host:port/v1); the key comes "
                        "from OPENAI_API_KEY")
    g.add_argument("--llm-model", default=d.llm_model,
                   help="openai: the model name; local: a model folder, a .gguf file, or smollm2")
    g.add_argument("--llm-concurrency", type=int, default=d.llm_concurrency, help="requests in flight at once")
    g.add_argument("--llm-timeout", type=float, default=d.llm_timeout, help="seconds to wait for one reply")
    g.add_argument("--llm-retries", type=int, default=d.llm_retries,
                   help="retries of a timeout, dropped connection, 429 or 5xx (exponential backoff)")

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=float, default=d.epochs, help="passes over the training questions")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="rows per batch, each one chunk with 4 questions")
    g.add_argument("--lr", type=float, default=d.learning_rate, dest="learning_rate", help="learning rate")
    g.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="share of the steps spent warming up")
    g.add_argument("--pairs", type=Path, action="append", default=[], dest="pairs_files", metavar="FILE",
                   help="labelled pairs (CSV/JSONL: sentence1,sentence2,label) to train on alongside the questions; "
                        "repeat for more files")
    g.add_argument("--pairs-loss", choices=("cosine", "cosent", "angle"), default=d.pairs_loss,
                   help="loss for --pairs")
    g.add_argument("--hard-negatives", action=argparse.BooleanOptionalAction, default=d.hard_negatives,
                   help="train with one mined hard negative per chunk")
    g.add_argument("--same-theme-negatives", action=argparse.BooleanOptionalAction, default=d.same_theme_negatives,
                   help="with --hard-negatives: prefer a negative on the same theme as the chunk")
    g.add_argument("--mini-batch-size", type=int, default=d.mini_batch_size,
                   help="encode this many texts at a time with gradient caching, for batches larger than memory "
                        "allows (0: off)")
    g.add_argument("--matryoshka-dims", type=_int_list, default=d.matryoshka_dims, metavar="D,D,...",
                   help="also train and report these truncated embedding sizes, e.g. 256,128,64")
    g.add_argument("--max-steps", type=int, default=d.max_steps, help="cap on training steps (-1: none)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of every random choice")
    g.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N or mps ('': cuda or mps if available)")
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="training arithmetic (auto: bf16 or fp16 on a GPU, bf16 on a CPU that has it, else fp32)")

    g = p.add_argument_group("model selection")
    g.add_argument("--eval-fraction", type=float, default=d.eval_fraction, help="share of chunks held out")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="share of chunks whose questions pick the checkpoint and the mix (0: no validation)")
    g.add_argument("--evals", type=int, default=d.evals, help="validations (and checkpoints) over training")
    g.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many validations without improvement (0: never stop early)")
    g.add_argument("--wise", action=argparse.BooleanOptionalAction, default=d.wise,
                   help="mix the tuned weights with the base in the share validation prefers (WiSE-FT)")

    g = p.add_argument_group("retrieval")
    g.add_argument("--passage-words", type=int, default=d.passage_words, metavar="N",
                   help="also index each chunk as passages of whole sentences, N words or more (0: one vector per "
                        "chunk)")
    g.add_argument("--passage-stride", type=int, default=d.passage_stride, metavar="S",
                   help="start a passage at every S-th sentence, so passages overlap (0: passages without overlap)")
    g.add_argument("--chunk-weight", type=float, default=d.chunk_weight, metavar="W",
                   help="a chunk scores (best passage + W * its own vector) / (1 + W)")
    g.add_argument("--hybrid-weight", type=float, default=d.hybrid_weight, metavar="W",
                   help="the model's share of the hybrid score, BM25 taking the rest")

    g = p.add_argument_group("publishing")
    g.add_argument("--push", default="", dest="push_repo", metavar="REPO_ID", help="push the model to this Hub repo")
    g.add_argument("--private", action="store_true", help="with --push: create a private repo")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after a flag's help, unless there is no default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, "", [], (), False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser(run_defaults: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragtune", description="Fine-tune an embedding model on your documents.")
    parser.add_argument("--version", action="version", version=f"ragtune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="extract, chunk, generate questions, fine-tune, evaluate, save")
    _add_run_args(run)
    run.add_argument("--config", type=Path, default=None, metavar="FILE",
                     help="TOML or YAML file of settings (e.g. batch_size = 16); flags given here override it")
    if run_defaults:
        run.set_defaults(**run_defaults)
    # Not a Config field: it only adds a table and a metrics.json entry after the run.
    run.add_argument("--eval-dataset", type=Path, default=None, metavar="FILE",
                     help="also evaluate base and fine-tuned models on this LlamaIndex EmbeddingQAFinetuneDataset JSON")
    push = sub.add_parser("push", help="upload a run's model to the Hugging Face Hub")
    push.add_argument("run_dir", type=Path, help="the --out folder of a finished `ragtune run`")
    push.add_argument("repo_id", help="the Hub repo to create or update, as user/name or org/name")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no network")
    push.add_argument("--force", action="store_true", help="push even if the run did not beat the base model")
    push.add_argument("--with-data", action="store_true",
                      help="also upload the run's question-chunk pairs as the dataset repo REPO_ID-pairs, linked "
                           "from the model card")
    push.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="give up on a Hub request (and retry it) after this many seconds without progress "
                           "(default: $RAGTUNE_HUB_TIMEOUT, else 60)")
    cli_pairs.add_parsers(sub)
    cli_search.add_parsers(sub)
    cli_stores.add_parsers(sub)
    for command in sub.choices.values():
        command.formatter_class = _Help
    return parser


def _config_from_args(args: argparse.Namespace) -> Config:
    fields = {k: tuple(v) if isinstance(v, list) else v
              for k, v in vars(args).items() if k not in ("command", "eval_dataset", "config")}
    # --exclude adds to the files always left out (a folder's README, LICENSE …); --include reads one anyway.
    fields["exclude"] = tuple(dict.fromkeys(DEFAULT_EXCLUDE + fields.get("exclude", ())))
    return Config(**fields)


def _flag_aliases() -> dict[str, str]:
    """Flag names that differ from their Config field, as config-file keys: {"lr": "learning_rate", ...}."""
    p = argparse.ArgumentParser()
    _add_run_args(p)
    return {opt[2:].replace("-", "_"): a.dest for a in p._actions for opt in a.option_strings
            if opt.startswith("--") and not opt.startswith("--no-") and opt[2:].replace("-", "_") != a.dest
            and a.dest != "help"}


def _with_config_file(args: argparse.Namespace, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv` again with the settings of --config FILE as defaults, so flags given on the command line win."""
    values = load_config_file(args.config, _flag_aliases())
    args = build_parser(values).parse_args(argv)
    try:
        _config_from_args(args)
    except ConfigError as e:
        # Name the file when the bad setting came from it rather than from a flag.
        if e.setting in values and getattr(args, e.setting, None) == values[e.setting]:
            raise ConfigError(f"config file {args.config}: {e}") from None
        raise
    return args


def _quiet_libraries() -> None:
    # Library chatter (progress bars, deprecation notices) would drown the stage lines.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("pypdf", "transformers", "sentence_transformers", "datasets", "bm25s", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cmd_run(args: argparse.Namespace) -> int:
    from ..pipeline import Pipeline
    from ..search import add_dataset_metrics, load_llamaindex_dataset

    cfg = _config_from_args(args)
    cli_pairs.check_output(cfg.out, "--out")  # a bad --out fails now, not after training
    if args.eval_dataset is not None:
        load_llamaindex_dataset(args.eval_dataset)  # a malformed file fails now, not after training
    if cfg.pairs_files:
        from ..pairs import load_pairs_file

        for f in cfg.pairs_files:
            load_pairs_file(f)  # likewise for a bad labelled-pairs file
    if cfg.themes_file is not None:
        from ..themes import load_lexicon

        load_lexicon(cfg.themes_file)  # and for a bad themes file, before extraction
    start = time.perf_counter()
    print(f"ragtune {__version__}: {cfg.docs} -> {cfg.out}", file=sys.stderr)
    result = Pipeline(cfg, ProgressReporter()).run()
    m = result.metrics
    print(f"\nRetrieval on {m['n_queries']} held-out questions over {m['n_chunks']} chunks:")
    print(_fmt_table(m))
    if "pairs" in m:
        lp = m["pairs"]
        print(f"\nLabelled pairs ({lp['n_pairs']} held out), cosine vs label:")
        print(f"{'':<12}{'pearson':>9}{'spearman':>9}")
        for label, key in (("base", "before"), ("fine-tuned", "after")):
            print(f"{label:<12}{lp[key]['pearson']:>9.3f}{lp[key]['spearman']:>9.3f}")
    if m["improved"]:
        print(f"\nImproved: hit@5 {m['before']['hit@5']:.3f} -> {m['after']['hit@5']:.3f}, "
              f"MRR@10 {m['before']['mrr@10']:.3f} -> {m['after']['mrr@10']:.3f}.")
    else:
        print("\nNOT IMPROVED: the fine-tuned model is not better than the base model on held-out questions. "
              "It is saved but marked as not improved; `ragtune push` refuses it without --force.")
    _print_advice(m)
    print(f"Model: {cfg.out / 'model'}   metrics: {cfg.out / 'metrics.json'}   report: {cfg.out / 'report.html'}   "
          f"({time.perf_counter() - start:.0f}s)")
    if args.eval_dataset is not None:
        d = add_dataset_metrics(cfg.out, args.eval_dataset, cfg.device)
        print(f"\nRetrieval on {d['n_queries']} questions from {d['file']} over {d['n_corpus']} corpus texts:")
        print(_fmt_table(d))
    if cfg.push_repo:
        return _push(cfg.out, cfg.push_repo, private=cfg.private, dry_run=False, force=False)
    return 0


def _push(run_dir: Path, repo_id: str, private: bool, dry_run: bool, force: bool, with_data: bool = False,
          timeout: float | None = None) -> int:
    from .. import hub

    if dry_run:
        plan = hub.plan_push(run_dir, repo_id, private, with_data)
        visibility = "private" if private else "public"
        if plan.dataset_repo_id:
            print(f"Would upload {len(plan.dataset_files)} files ({plan.dataset_bytes / 1e6:.1f} MB) to "
                  f"{visibility} dataset repo {plan.dataset_repo_id}:")
            for rel, size in plan.dataset_files:
                print(f"  {rel:<50} {size:>12,} bytes")
        print(f"Would upload {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) to "
              f"{visibility} model repo {repo_id}" + (f", its card listing {plan.dataset_repo_id}:"
                                                      if plan.dataset_repo_id else ":"))
        for rel, size in plan.files:
            print(f"  {rel:<50} {size:>12,} bytes")
        return 0
    url = hub.push(run_dir, repo_id, private=private, force=force, with_data=with_data, timeout=timeout)
    if with_data:
        print(f"Pushed the pairs of {run_dir} to dataset {hub.dataset_repo_id(repo_id)}")
    print(f"Pushed {run_dir / 'model'} to {url}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    return _push(args.run_dir, args.repo_id, args.private, args.dry_run, args.force, args.with_data, args.timeout)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that `kill` unwinds like Ctrl-C."""

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def _after_interrupt(args: argparse.Namespace, e: KeyboardInterrupt) -> str:
    """What an interrupted command kept, and how to go on."""
    # Training catches the signal itself, saves a checkpoint and says which signal it was.
    checkpoint = hasattr(e, "signum") and not isinstance(e, _Terminated)
    if args.command == "run":
        where = "from the training checkpoint" if checkpoint else "from the last finished stage"
        return f"rerun the same command to resume {where}."
    if args.command == "pairs":
        work = args.out / "trainer.tmp"
        if checkpoint or any(work.glob("checkpoint-*")):
            return f"the training checkpoint in {work} is kept; rerun the same command to resume from it."
        return "nothing was kept; rerun the same command to start again."
    if args.command == "push":
        # hub.push updates each repo in one commit: a cut-off upload changes nothing that is visible.
        return ("a repo changes on the Hub only when its upload finishes, so none is left half-pushed; "
                "rerun the same command to push.")
    if args.command == "reindex":
        return ("the old collection is untouched and nothing was switched; rerun the same command to go on "
                "without re-encoding the records already written.")
    return "nothing was changed." if args.command != "export" else "nothing was written."


def _output_of(args: argparse.Namespace) -> tuple[str, Path] | None:
    """The flag and path a command writes to, for error hints."""
    if args.command in ("run", "pairs"):
        return "--out", args.out
    if args.command == "export":
        return "--llamaindex", args.llamaindex
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    commands = {"run": cmd_run, "push": cmd_push, **cli_pairs.COMMANDS, **cli_search.COMMANDS,
                **cli_stores.COMMANDS}
    # Handlers can only be set from the main thread (not when main() runs in a worker).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        if getattr(args, "config", None) is not None:
            args = _with_config_file(args, argv)
        return commands[args.command](args)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"\nragtune: interrupted ({signal.Signals(signum).name}); {_after_interrupt(args, e)}", file=sys.stderr)
        return 128 + signum
    except RagtuneError as e:
        print(f"ragtune: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        # What no check caught (a full disk, a folder made read-only mid-run): one line, never a traceback.
        print(f"ragtune: error: {cli_pairs.os_error_line(e, _output_of(args))}", file=sys.stderr)
        return 1
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
