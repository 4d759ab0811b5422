"""Runs the stages in order, keeping all state in the run directory.

The stages are in ragtune/stages/, one module each, and declare themselves
(`STAGE`: name, settings, outputs, work); this module only numbers, keys and runs
them. Each stage has a key: a hash of the previous stage's key (the first stage's:
ragtune's version) and the Config fields the stage declares. A rerun skips a stage
whose key matches the manifest and whose outputs are still the files it wrote
(their size and digest are recorded); when a setting changes, or an output was
truncated or replaced, that stage and everything after it run again.

One run at a time: run.lock in the run directory names the run that holds it
(ragtune.rundir, with the manifest).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Protocol

from . import __version__
from .budget import PART_STAGES, plan_for_run, planned_config, training_deadline
from .config import Config
from .errors import (
    ConfigError,
    DiskFullError,
    NotEnoughDataError,  # noqa: F401  (importable from here, as before the stages moved)
    RunDirError,
)
from .extract import list_folder
from .fileio import free_bytes, is_disk_full, megabytes, read_json, write_json
from .metrics import metrics_text_table
from .models import load_model, pick_device, resolve_base_model
from .names import BASE, FINE_TUNED, upgrade_metrics
from .progress import ProgressReporter
from .rundir import (  # noqa: F401  # noqa: F401
    MANIFEST_VERSION,
    Manifest,
    RunLock,
    check_out_dir,
    claim_out_dir,
    hash_parts,
    move_to_work,
)
from .runfiles import METRIC_TABLES, RunFiles, metrics_problem  # noqa: F401  (importable from here, as before)
from .stagecosts import StageCosts
from .stagekeys import (  # noqa: F401  (importable from here, as before they moved)
    LLM_SETTINGS,
    STAGE_SETTINGS,
    STAGES,
    UNKEYED,
    _docs_fingerprint,
    _settings_part,
    stage_keys,
)
from .stages import PIPELINE, Records, Stage
from .stages.base import StageResult
from .themes import DEFAULT_LEXICON, EXAMPLE_THEMES, load_lexicon
from .training import distributed
from .training.deadline import Deadline


class Reporter(Protocol):
    """How the pipeline tells the caller what it is doing (the CLI prints; tests may record)."""

    def stage_start(self, name: str, index: int, total: int) -> None: ...
    def stage_progress(self, name: str, done: int, total: int) -> None: ...
    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None: ...

    # Optional (the pipeline looks it up): the stage raised, e.g. to clear a progress bar.
    # def stage_abort(self, name: str) -> None: ...

    # Optional (the pipeline looks it up): the input files, pages or lines extraction
    # skipped, as SkipCounter.to_dict(); called after the extract stage, fresh or reused.
    # def input_skipped(self, skipped: dict[str, Any]) -> None: ...

    # Optional (the pipeline looks it up; without it, a logging warning): one line about
    # something the run repaired or redid, e.g. a checkpoint cut off mid-write it skipped.
    # def note(self, message: str) -> None: ...

    # Optional (the pipeline looks it up; without it, logging at info): the plan's line, what the run will
    # do and about how long it takes (ragtune.budget), before the generate stage.
    # def plan(self, line: str) -> None: ...


class SilentReporter:
    def stage_start(self, name: str, index: int, total: int) -> None:
        pass

    def stage_progress(self, name: str, done: int, total: int) -> None:
        pass

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        pass


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The held-out metrics, one row per retriever (as `ragtune run` prints them)."""
        return metrics_text_table(self.metrics)

    def __repr__(self) -> str:
        hit5 = [self.metrics.get(key, {}).get("hit@5") for key in (BASE, FINE_TUNED)]
        moved = " -> ".join(f"{v:.3f}" if isinstance(v, float) else "?" for v in hit5)
        return f"RunResult(run_dir={str(self.run_dir)!r}, improved={self.metrics.get('improved')!r}, hit@5={moved!r})"


def _check_matryoshka_dims(dims: tuple[int, ...], model: Any) -> None:
    """Raise when a Matryoshka size exceeds the base model's own: the loss would fail deep in training."""
    full = model.get_embedding_dimension()
    too_big = sorted(d for d in dims if full and d > full)
    if too_big:
        raise ConfigError(
            f"matryoshka_dims must be at most the base model's dimension ({full}), not "
            f"{', '.join(map(str, too_big))}; lower --matryoshka-dims",
            "matryoshka_dims",
        )


class Pipeline:
    """One run of ragtune over a folder of documents."""

    def __init__(
        self,
        cfg: Config,
        reporter: Reporter | None = None,
        progress: bool = False,
        stages: tuple[Stage, ...] = PIPELINE,
    ) -> None:
        """`progress=True` (and no `reporter`) shows a line per stage and progress bars, in a terminal or notebook.
        `stages` are run in order (ragtune.stages.PIPELINE, unless a caller adds its own)."""
        self.cfg = cfg
        self.run_dir = cfg.out
        self.files = RunFiles(cfg.out)
        self.stages = stages
        if reporter is None and progress:
            reporter = ProgressReporter()
        self.reporter = reporter or SilentReporter()
        self.manifest = Manifest(self.run_dir)
        # The models loaded so far ("base", "tuned") and their own max_seq_length before the run raised it;
        # the key of the stage now running (training checkpoints carry it).
        self.models: dict[str, Any] = {}
        self.default_lengths: dict[str, int] = {}
        self.key = ""
        # The base model and device config.json records, resolved once (resolved_config).
        self._resolved: dict[str, str] | None = None

    # -- what the stages use ---------------------------------------------------------------
    def path(self, name: str) -> Path:
        """A file or folder in the run directory."""
        return self.run_dir / name

    def model(self, which: str) -> Any:
        """The base model or the fine-tuned one, loaded once per run."""
        if which not in self.models:
            source = resolve_base_model(self.cfg.base_model) if which == "base" else str(self.files.model)
            self.models[which] = load_model(source, pick_device(self.cfg.device))
            if which == "base":
                _check_matryoshka_dims(self.cfg.matryoshka_dims, self.models[which])
            self.default_lengths[which] = int(self.models[which].max_seq_length)
        model = self.models[which]
        # Once chunking has sized the chunks, every model reads them whole, the
        # same way before and after training.
        seq_length = self.manifest.info("chunk").get("max_seq_length")
        if seq_length:
            model.max_seq_length = seq_length
        return model

    def default_length(self, which: str) -> int:
        """The max_seq_length `which` model has of its own, before the run raised it to fit the chunks."""
        if which not in self.default_lengths:
            self.model(which)
        return self.default_lengths[which]

    def progress_for(self, stage: str) -> Callable[[int, int], None]:
        """The callback a stage reports its progress through: `progress(done, total)`."""
        return lambda done, total: self.reporter.stage_progress(stage, done, total)

    def training_deadline(self) -> Deadline | None:
        """When training ends to keep --time-budget, and how many more steps it may take (None: no budget)."""
        return training_deadline(self.plan, self.started)

    def note(self, message: str) -> None:
        """One line about something the run repaired or redid (the reporter's `note`, else a logging warning)."""
        note = getattr(self.reporter, "note", None)
        if note is not None:
            note(message)
        else:
            logging.getLogger(__name__).warning("%s", message)

    def _stage(self, index: int, stage: Stage, key: str, records: Records, rekey: Callable[[Any], str]) -> Any:
        """Run `stage` unless the manifest's entry for it has this `key` and its outputs are the files it
        recorded (its `edited` outputs only have to exist, and its `problem` must find nothing). Its result
        (reused: read back from the manifest) is returned, and its key left in `self.key`.

        An empty `key` is known only once the stage ran: `rekey` makes it from the digests of the documents
        it read (its result's `read`)."""
        name = stage.name
        self.key = key
        self.reporter.stage_start(name, index, len(self.stages))
        # Once a stage has run in this run, every later stage is stale too, even
        # if its key matches (e.g. a deleted model was retrained).
        if not self.timings and key:
            reused = self._reusable(stage, key)
            if reused is not None:
                return stage.result.from_record(reused) if stage.result is not None else reused
        # The old entry is stale: nothing may read it while the stage runs again (e.g. a damaged
        # max_seq_length of the chunk stage, which Pipeline.model reads).
        self.manifest.data["stages"].pop(name, None)
        self.costs.start()
        start = time.perf_counter()
        try:
            result = stage.run(self, records)
        except BaseException:
            abort = getattr(self.reporter, "stage_abort", None)
            if abort is not None:
                abort(name)
            raise
        seconds = time.perf_counter() - start
        info = result.record() if isinstance(result, StageResult) else result
        # A stage that returns no digests of what it read (a plain dict) is keyed by hashing the documents.
        self.key = key or rekey(getattr(result, "read", None))
        outputs = stage.outputs(self.files)
        self.manifest.record(
            name, self.key, seconds, info, outputs + [p for p in stage.written(self.files) if p not in outputs]
        )
        for which in stage.replaces:
            self.models.pop(which, None)
        self.timings[name] = seconds
        self.costs.end(name, seconds)
        self.reporter.stage_end(name, info.get("summary", ""), seconds, cached=False)
        return result

    def _reusable(self, stage: Stage, key: str) -> dict[str, Any] | None:
        """The manifest record of `stage` when its key and outputs still hold (reported as cached), else None."""
        stale = self.manifest.stale_output(stage.name, key, stage.outputs(self.files))
        edited = stage.edited(self.files)
        if stale is None and not all(p.exists() for p in edited):
            stale = f"{next(p for p in edited if not p.exists()).relative_to(self.run_dir).as_posix()} is missing"
        if stale is None:
            stale = stage.problem(self.files)
        if stale is None:
            info = self.manifest.info(stage.name)
            self.reporter.stage_end(stage.name, info.get("summary", ""), 0.0, cached=True)
            self._cached.append(stage.name)
            return info
        if stale:
            self.note(f"{stale}; redoing the {stage.name} stage")
        return None

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run every stage whose inputs changed, holding run.lock; a full disk is a DiskFullError."""
        if distributed.rank() > 0:
            # Under torchrun only rank 0 runs the stages; this rank trains beside it (ragtune.training.distributed).
            return self._follow()
        self.timings: dict[str, float] = {}
        self.costs = StageCosts()
        self.started = time.perf_counter()
        self.plan: Any = None
        self._cached: list[str] = []
        # An --out that is not this run's to write, or a mistyped or empty docs folder, fails
        # here, before anything is written.
        check_out_dir(self.run_dir, "run", self.cfg.docs)
        self.listing = list_folder(self.cfg.docs, self.cfg.include, self.cfg.exclude)
        claim_out_dir(self.run_dir, "run", self.cfg.docs)
        lock = RunLock(self.run_dir)
        taken_over = lock.acquire()
        try:
            if taken_over:
                self.note(taken_over)
            moved = move_to_work(self.run_dir)
            if moved:
                self.note(
                    f"moved or renamed {moved} files of an older ragtune's run folder under {self.files.work} (kept, not redone)"
                )
            # Read again under the lock: a run that held it before may have recorded stages since.
            self.manifest = Manifest(self.run_dir)
            # share: the other torchrun ranks (if any) return the same result.
            return distributed.share(self._run_stages())
        except Exception as e:
            if isinstance(e, DiskFullError) or not self.is_disk_full(e):
                raise
            raise self.disk_full_error(e) from None
        finally:
            lock.release()

    def _follow(self) -> RunResult:
        """A torchrun rank other than 0: train each time rank 0 trains, write nothing, return rank 0's result."""
        from .training.trainer import fine_tune  # imports torch: only when this process trains

        while isinstance(job := distributed.share(), dict):
            device = pick_device(self.cfg.device)
            model = load_model(resolve_base_model(self.cfg.base_model), device)
            model.max_seq_length = job.pop("max_seq_length")
            fine_tune(model, cfg=self.cfg, work_dir=self.files.checkpoints, device=device, **job)
        return job

    def is_disk_full(self, e: Exception, need: tuple[str, int] | None = None) -> bool:
        """Whether `e` means the disk filled up (torch.save says so only in its own words, which count
        when less is free than the (what, bytes) the stage still had to write: `need`)."""
        if is_disk_full(e):
            return True
        # torch.save says only "unexpected pos …" or "file write failed" when the disk fills up.
        free = free_bytes(self.run_dir)
        return (
            isinstance(e, RuntimeError)
            and any(s in str(e) for s in ("inline_container", "PytorchStreamWriter"))
            and need is not None
            and free is not None
            and free < need[1]
        )

    def disk_full_error(self, e: Exception, need: tuple[str, int] | None = None) -> DiskFullError:
        """The one-line DiskFullError for `e`, with what the stage still had to write (`need`) when known."""
        filename = getattr(e, "filename", None)
        where = Path(filename).parent if filename else self.run_dir
        free = free_bytes(self.run_dir)
        needs = f"{need[0]} needs about {megabytes(need[1])}, " if need else ""
        have = f"{megabytes(free)} is free now" if free is not None else "the disk is full"
        return DiskFullError(
            f"no space left on the disk of {where}: {needs}{have}; free some space (or use --out on a bigger "
            "disk) and rerun the same command, which continues where this one stopped"
        )

    def _run_stages(self) -> RunResult:
        """Key and run (or reuse) each stage in order, each keyed with the key of the one before."""
        write_json(self.files.config, self.resolved_config())
        # The evaluate stage writes metrics.json anew: the figures of the stages this run reuses are read now.
        self.earlier_costs = self._earlier_costs()
        # Once per run: the theme stage reads the same lexicon its key was made with.
        self._lexicon = None
        lexicon = self._lexicon = self.lexicon()
        records: Records = {}
        # What the stages keyed by earlier stages' records were made of (save: the run summary).
        made: dict[str, Any] = {}
        key = hash_parts(__version__)
        for index, stage in enumerate(self.stages, 1):
            if stage.name == "generate":
                # Planned once the chunks are known (`key`, the theme stage's, covers them), before the first
                # stage whose settings a budget may change.
                self._plan(key)
            before = key
            if stage.inputs is not None:
                records[stage.name] = made[stage.name] = stage.inputs(self, records)
                key = hash_parts(key, stage.name, made[stage.name])
            elif "docs" in stage.settings and self._runs_anyway(stage):
                key = ""  # known once the stage has read the documents, from the digests it returns
            else:
                key = self._settings_key(before, stage, lexicon)
            rekey = partial(self._settings_key, before, stage, lexicon)
            records[stage.name] = self._stage(index, stage, key, records, rekey)
            key = self.key
            self._warn_skips(stage, records[stage.name])
        if self.timings:
            # A rerun that reused every stage keeps the figures of the run that made them.
            self._record_costs()
        return RunResult(
            self.run_dir,
            upgrade_metrics(read_json(self.files.metrics)),
            made.get("save", {}),
            self.timings,
            self._cached,
        )

    def _settings_key(
        self, before: str, stage: Stage, lexicon: dict[str, list[str]], read: dict[Path, tuple[int, str]] | None = None
    ) -> str:
        """The key of a stage keyed by its settings (`read`: the digests of the documents it read, if it did)."""
        fingerprint = _docs_fingerprint(self.cfg, self.listing, read) if "docs" in stage.settings else []
        return hash_parts(before, stage.name, _settings_part(self.cfg, stage, fingerprint, lexicon))

    def _runs_anyway(self, stage: Stage) -> bool:
        """Whether `stage` runs whatever its key: a stage before it ran, or it has no record whose outputs still
        hold. Its key then need not read the documents before it does (the folder is read once)."""
        entry = self.manifest.data["stages"].get(stage.name)
        return (
            bool(self.timings)
            or not entry
            or self.manifest.stale_output(stage.name, entry.get("key"), stage.outputs(self.files)) is not None
        )

    def _warn_skips(self, stage: Stage, result: Any) -> None:
        """Tell the reporter's input_skipped of the user's input files a stage skipped."""
        warn = getattr(self.reporter, "input_skipped", None)
        if not stage.input_skips or warn is None:
            return
        skipped = result.skipped if isinstance(result, StageResult) else result["skipped"]
        if skipped["counts"]:
            warn(skipped)

    def resolved_config(self) -> dict[str, Any]:
        """config.json: the settings, with the base model and device the run really used (not "" for
        "choose for me") and the ragtune version; `ragtune run DOCS --config RUN/config.json` reads it back."""
        # Resolved once a run: a budget's plan writes config.json again, with the same model and device.
        if self._resolved is None:
            self._resolved = {
                "base_model": resolve_base_model(self.cfg.base_model),
                "device": pick_device(self.cfg.device),
            }
        return self.cfg.to_dict() | self._resolved | {"ragtune_version": __version__}

    def _plan(self, chunk_key: str) -> None:
        """Measure a few steps, plan the run (under --time-budget, to fit it), say so, and train to the plan."""
        self.plan, reused = plan_for_run(self, chunk_key, self.started)
        self.cfg = planned_config(self.cfg, self.plan)
        # A rerun of the same plan counts only the parts no earlier invocation recorded (each is still rerun if
        # its inputs changed): a finished run's rerun would otherwise announce the whole run's minutes again.
        recorded = self.manifest.data["stages"]
        done = [p for p, names in PART_STAGES.items() if reused and all(n in recorded for n in names)]
        if self.plan.budget_seconds:
            # config.json holds the settings the run used: the plan's.
            write_json(self.files.config, self.resolved_config() | {"plan": self.plan.to_dict()})
        say = getattr(self.reporter, "plan", None)
        if say is not None:
            say(self.plan.line(done))
        else:
            logging.getLogger(__name__).info("%s", self.plan.line(done))

    def _earlier_costs(self) -> dict[str, Any]:
        """The "stages" of the metrics.json an earlier run wrote, if any ({} when it cannot be read)."""
        if not self.files.metrics.exists():
            return {}
        try:
            earlier = read_json(self.files.metrics)
        except RunDirError:
            return {}  # damaged: the evaluate stage reruns and writes it anew
        return earlier.get("stages", {}) if isinstance(earlier, dict) else {}

    def _record_costs(self) -> None:
        """metrics.json's "stages" (seconds and peak memory of each) and "plan" (what was planned, and how long it took)."""
        metrics = read_json(self.files.metrics)
        metrics["stages"] = self.costs.merged(self.earlier_costs, [s.name for s in self.stages])
        if self.plan is not None:
            # actual_seconds: this invocation's, from its start to the end of its last stage.
            metrics["plan"] = self.plan.to_dict() | {"actual_seconds": round(time.perf_counter() - self.started, 1)}
        write_json(self.files.metrics, metrics)

    def lexicon(self) -> dict[str, list[str]]:
        """The themes of --themes FILE; {} without one, when the theme stage derives them from the corpus.

        A run whose themes were tagged before themes were derived (its theme record says nothing of where they
        came from) keeps the AI-governance lexicon it was made with, so that it resumes without redoing a stage.
        """
        if getattr(self, "_lexicon", None) is not None:
            return self._lexicon
        if self.cfg.themes_file:
            return load_lexicon(self.cfg.themes_file)
        theme = self.manifest.info("theme")
        return DEFAULT_LEXICON if theme and theme.get("themes_from", EXAMPLE_THEMES) == EXAMPLE_THEMES else {}
