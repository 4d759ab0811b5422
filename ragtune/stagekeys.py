"""How a stage of `ragtune run` is keyed: a hash of the previous stage's key (the first stage's: ragtune's
version) and the Config fields the stage declares (ragtune.stages), three of them through what they name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import __version__
from .config import LLM_GENERATORS, Config
from .extract import Listing, list_folder
from .fileio import sha256_digest
from .rundir import hash_parts
from .stages import PIPELINE, Stage

# The Config fields each stage's output depends on, as the stages declare them (ragtune.stages). A
# stage's cache key hashes these with the key of the stage before it, so a change reruns that stage and
# every later one. Three are hashed through what they name: docs as the digest of every file read,
# themes_file as the lexicon it loads, pairs_files as their digests.
# tests/test_stage_keys.py checks that every Config field is here or in UNKEYED.
STAGES = tuple(stage.name for stage in PIPELINE)
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {stage.name: stage.settings for stage in PIPELINE}
# No output depends on these: where the run goes, where it trains, where it is pushed.
UNKEYED = ("out", "device", "push_repo", "private", "time_budget")
# Keyed only with an LLM generator, so that offline runs keep their key when these change.
LLM_SETTINGS = ("llm_base_url", "llm_model", "llm_concurrency", "llm_timeout", "llm_retries")
# Settings added after run folders were written, with the value that leaves them off: keyed only when they
# differ from it, so a folder written before they existed keeps its keys and reruns nothing.
ADDED_SETTINGS: dict[str, Any] = {"long_inputs": 0.0, "distil_steps": 0, "wise_share": 1.0}


def _file_digest(path: Path) -> str:
    try:
        return sha256_digest(path)
    except OSError:
        return f"unreadable:{path}"


def stage_keys(
    cfg: Config,
    fingerprint: list[tuple[str, int, str]],
    lexicon: dict[str, list[str]],
    stages: tuple[Stage, ...] = PIPELINE,
) -> dict[str, str]:
    """The cache keys of the stages keyed by their settings, up to the first keyed by what the stages
    before it made (save: the run summary), which is known only once they ran.

    `fingerprint` is `_docs_fingerprint(cfg)` and `lexicon` the themes the run tags with:
    what `docs` and `themes_file` stand for in STAGE_SETTINGS.
    """
    keys: dict[str, str] = {}
    key = hash_parts(__version__)
    for stage in stages:
        if stage.inputs is not None:
            break
        key = keys[stage.name] = hash_parts(key, stage.name, _settings_part(cfg, stage, fingerprint, lexicon))
    return keys


def _settings_part(
    cfg: Config, stage: Stage, fingerprint: list[tuple[str, int, str]], lexicon: dict[str, list[str]]
) -> dict[str, Any]:
    """What a stage's key hashes of its settings: their values, or for three of them what they name."""

    def value(name: str) -> Any:
        if name == "docs":
            return fingerprint
        if name == "themes_file":
            return lexicon
        if name == "pairs_files":
            return [_file_digest(f) for f in cfg.pairs_files]
        return getattr(cfg, name)

    names = [n for n in stage.settings if n not in LLM_SETTINGS or cfg.generator in LLM_GENERATORS]
    names = [n for n in names if n not in ADDED_SETTINGS or getattr(cfg, n) != ADDED_SETTINGS[n]]
    return {n: value(n) for n in names}


def _docs_fingerprint(
    cfg: Config, listing: Listing | None = None, read: dict[Path, tuple[int, str]] | None = None
) -> list[tuple[str, int, str]]:
    """Name, size and digest of every file extraction will read, and name, size and
    modification time of those it only lists (unsupported or excluded: a 3 GB video
    is never read); raises ExtractError when the folder has nothing to read.

    `listing` is the folder's when it was listed already; `read` holds the size and digest of the files
    extraction read (Extraction.read): those are not read again."""
    # Unreadable subfolders and bad links are counted by extraction itself; here they only drop out.
    listing = listing or list_folder(cfg.docs, cfg.include, cfg.exclude)
    out, to_read, read = [], set(listing.supported), read or {}
    for p in listing.supported + listing.other + listing.excluded:
        if p in read:
            out.append((p.name, *read[p]))
            continue
        try:
            stat = p.stat()
            seen = sha256_digest(p) if p in to_read else f"mtime:{stat.st_mtime_ns}"
            out.append((p.name, stat.st_size, seen))
        except OSError as e:
            # Extraction skips and counts it; once it can be read, the key changes and extraction reruns.
            out.append((p.name, -1, f"unreadable ({type(e).__name__})"))
    return out
