"""Every error a user can cause, under one base class.

The CLI prints any `RagtuneError` as one `ragtune: error: …` line and exits 1;
anything else is a bug and keeps its traceback. Library users can catch the base:

>>> try:
...     raise ConfigError("epochs must be > 0, not 0", setting="epochs")
... except RagtuneError as e:
...     (str(e), e.setting)
('epochs must be > 0, not 0', 'epochs')

Each error stays importable from the module that raises it (`ragtune.config.ConfigError`).
"""

from __future__ import annotations

from pathlib import Path


class RagtuneError(Exception):
    """Something the user can fix; the one-line message says what was wrong and what to do."""


class ConfigError(RagtuneError, ValueError):
    """A setting is invalid; the message names it and says what is allowed.

    `setting` is the Config field at fault ("" when the error is about a file as a whole),
    so that the CLI can tell whether the value came from a flag or a config file.
    """

    def __init__(self, message: str, setting: str = "") -> None:
        super().__init__(message)
        self.setting = setting


class ExtractError(RagtuneError):
    """The input folder cannot be used at all (missing, empty, nothing supported)."""


class NotEnoughDataError(RagtuneError):
    """Too little text to train on; the message says how much is needed."""


class ThemesError(RagtuneError, ValueError):
    """A themes file is unreadable or malformed; the message names file and key."""


class LLMError(RagtuneError):
    """The LLM cannot be used (unreachable, refusing every request, or not loadable); one line says what to do."""


class ModelError(RagtuneError):
    """A model cannot be found or loaded; the message says what to do."""


class OnnxError(ModelError):
    """ONNX export or inference cannot go ahead; the message says what to do."""


class OpenVinoError(ModelError):
    """OpenVINO export or inference cannot go ahead; the message says what to do."""


class RunDirError(RagtuneError):
    """A run directory or one of its files cannot be used; the message says why."""


class DiskFullError(RunDirError):
    """A write ran out of disk space (or quota); the message names the folder and the space needed."""


class HubError(RagtuneError):
    """A push failed or was refused; the message is one line meant for the user."""


class PairsError(RagtuneError):
    """An input file or run directory is unusable; the one-line message names the file and line."""


class SimilarityError(RagtuneError, ValueError):
    """The texts to compare are unusable; the message says why."""


class DatasetError(RagtuneError):
    """A LlamaIndex dataset file is missing or malformed; the message says where and how."""


class OutputError(RagtuneError):
    """An output path cannot be written; the one-line message names it and what to do."""


def did_you_mean_path(path: Path | str) -> str:
    """ "; did you mean SIBLING?" for the existing entry beside a missing `path` whose name is closest to it,
    or "" when none is close (or its folder cannot be listed): for errors about a mistyped folder.

    >>> did_you_mean_path("/no/such/place")
    ''
    """
    import difflib

    path = Path(path)
    try:
        names = [p.name for p in path.parent.iterdir()]
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    return f"; did you mean {path.parent / close[0]}?" if close else ""


class StoreError(RagtuneError):
    """A vector store (Qdrant, Chroma, LanceDB) cannot be written or reindexed; the message says what to do."""
