"""One error type: every error a user can cause is a RagtuneError, and the CLI prints any of them in one line."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import ragtune
from ragtune.cli import main
from ragtune.config import Config
from ragtune.errors import ConfigError, RagtuneError

# Raised and caught inside ragtune, never seen by a user.
# DamagedFile: a saved index file that cannot be read; search turns it into a RunDirError naming the rerun.
INTERNAL = {"RequestFailed", "_Transient", "_SkipFile", "DamagedFile"}


def ragtune_exceptions() -> dict[str, type[Exception]]:
    # Interrupts (KeyboardInterrupt subclasses) are not errors: the CLI says what was kept instead.
    found: dict[str, type[Exception]] = {}
    # walk_packages goes into the subpackages (stages/, generators/, ...) too.
    for info in pkgutil.walk_packages(ragtune.__path__, "ragtune."):
        if info.name == "ragtune.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__.startswith("ragtune"):
                found[name] = obj
    return found


def test_every_user_error_is_a_ragtune_error() -> None:
    found = ragtune_exceptions()
    # The scan sees the errors wherever they are raised from, so a new one cannot hide in a module.
    assert {"ConfigError", "ExtractError", "HubError", "LLMError", "PairsError", "DiskFullError"} <= set(found)
    outside = sorted(n for n, cls in found.items() if not issubclass(cls, RagtuneError) and n not in INTERNAL)
    assert outside == [], f"not under RagtuneError, so the CLI would print a traceback: {outside}"


def test_errors_stay_importable_where_they_are_raised() -> None:
    from ragtune.extract import ExtractError
    from ragtune.fileio import DiskFullError
    from ragtune.records import RunDirError

    assert issubclass(DiskFullError, RunDirError) and issubclass(ExtractError, RagtuneError)
    # ValueError too, for library code that caught the old type.
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"epochs": 0}, "epochs"),
        ({"lexical_remove": 2.0}, "lexical_remove"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"llm_base_url": "ftp://x"}, "llm_base_url"),
    ],
)
def test_config_error_names_its_setting(changes: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config(docs=Path("d"), **changes)  # type: ignore[arg-type]
    assert e.value.setting == setting
    assert setting in {f.name for f in dataclasses.fields(Config)}


def test_flag_that_matches_a_file_setting_is_blamed_on_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("epochs = 0\nbatch_size = 1\n")
    # batch_size comes from the file; epochs is overridden by a flag, so the file's batch_size is at fault.
    assert main(["run", str(tmp_path), "--config", str(settings), "--epochs", "1"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ragtune: error: config file {settings}: batch_size must be >= 2 (in-batch negatives need company), not 1"
    )
    # Same bad value from a flag: no file named, and the flag as typed.
    assert main(["run", str(tmp_path), "--batch-size", "1"]) == 1
    assert capsys.readouterr().err.strip() == (
        "ragtune: error: --batch-size must be >= 2 (in-batch negatives need company), not 1"
    )
