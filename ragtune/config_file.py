"""Settings files: a TOML or YAML file, or a run's own config.json, read (size cap, YAML aliases refused) into
Config field values typed like the fields. Config itself, and the checks of the values, are in config.py."""

from __future__ import annotations

import dataclasses
import reprlib
from pathlib import Path
from typing import Any

from .config import Config
from .errors import ConfigError

# A settings file holds a few hundred bytes; the cap keeps a huge one from being read into memory.
MAX_CONFIG_BYTES = 1 << 20


def _is_number(value: Any) -> bool:
    try:
        return isinstance(value, str) and float(value) == float(value)  # not NaN
    except ValueError:
        return False


# What a config-file value may be, by the type written on the Config field.
_KINDS = {
    "bool": ("true or false", lambda v: isinstance(v, bool), lambda v: v),
    "int": ("a whole number", lambda v: type(v) is int, lambda v: v),  # type(): True is not a number here
    # YAML reads 1e-4 (no dot) as a string; a number in quotes is still a number.
    "float": ("a number", lambda v: type(v) in (int, float) or _is_number(v), float),
    "float | None": ("a number or auto", lambda v: v is None or v == "auto" or type(v) in (int, float) or _is_number(v),
                     lambda v: None if v in (None, "auto") else float(v)),
    "str": ("a string", lambda v: isinstance(v, str), lambda v: v),
    "Path": ("a path (a string)", lambda v: isinstance(v, str), Path),
    "Path | None": ("a path (a string)", lambda v: v is None or isinstance(v, str),
                    lambda v: Path(v) if v else None),
    "tuple[int, ...]": ("a list of whole numbers",
                        lambda v: isinstance(v, list) and all(type(x) is int for x in v),
                        tuple),
    "tuple[str, ...]": ("a list of strings",
                        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                        tuple),
    "tuple[Path, ...]": ("a list of paths",
                         lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                         lambda v: tuple(Path(x) for x in v)),
}  # fmt: skip


def _short_repr(value: Any, limit: int = 80) -> str:
    """repr(value), cut to one short line: the value may be a list of a million items.

    >>> _short_repr(list(range(100)), 20)
    '[0, 1, 2, 3, 4, 5...'
    """
    short = reprlib.Repr()  # keyword arguments only from Python 3.12
    short.maxlist, short.maxlevel, short.maxstring, short.maxother = 20, 3, limit, limit
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_yaml_without_aliases(text: str) -> Any:
    """YAML as plain data, refusing aliases (`*name`): nested aliases turn a few hundred bytes
    into billions of list items (a "billion laughs"), and a settings file never needs one.

    Raises yaml.YAMLError, with the alias's line and column, on the first alias.

    >>> load_yaml_without_aliases("ks: [1, 3]")
    {'ks': [1, 3]}
    >>> load_yaml_without_aliases("a: &x [1]\\nb: *x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    yaml.composer.ComposerError: ...aliases (*name) are not allowed...
    """
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed here; write the value out", mark
                )
            return super().compose_node(parent, index)

    loader = NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# What a run's own config.json records besides its settings: read back with --config, they are left out.
# "plan": what a --time-budget run chose (its settings are already among the keys).
BOOKKEEPING_KEYS = ("docs", "ragtune_version", "plan")


def load_config_file(
    path: Path, aliases: dict[str, str] | None = None, notes: list[str] | None = None
) -> dict[str, Any]:
    """Settings from a TOML or YAML file, or a run's own config.json, keyed by Config field name and typed
    like the field.

    Keys are field names with "_" or "-" (`batch-size = 16`); `aliases` maps other
    accepted names (the CLI's `lr`) to fields. Values are read as on the command
    line: relative paths from the current directory. Ranges are checked later,
    by Config itself, once command-line flags have been applied. In a .json file (the config.json a run
    wrote) the run's bookkeeping (BOOKKEEPING_KEYS) is left out, with a line in `notes` that says so.
    """
    import difflib

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"config file {path}: {msg}")

    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise fail(f"is {size:,} bytes; a settings file is at most {MAX_CONFIG_BYTES:,} (is it the right file?)")
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        import tomllib

        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:  # the message ends "(at line 3, column 7)"
            raise fail(f"not valid TOML: {e}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = load_yaml_without_aliases(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise fail(f"not valid YAML: {where}{getattr(e, 'problem', None) or str(e).splitlines()[0]}") from None
    elif suffix == ".json":
        import json

        try:
            data = json.loads(text)
        except ValueError as e:
            raise fail(f"not valid JSON: {e}") from None
        if isinstance(data, dict):
            left_out = [k for k in BOOKKEEPING_KEYS if k in data]
            data = {k: v for k, v in data.items() if k not in BOOKKEEPING_KEYS}
            if left_out and notes is not None:
                notes.append(
                    f"config file {path}: left out {', '.join(left_out)} (what the run recorded, not settings; "
                    "DOCS comes from the command line)"
                )
    else:
        raise ConfigError(f"config file {path} must end in .toml, .yaml, .yml or .json (a run's config.json)")
    if not isinstance(data, dict):
        raise fail("must map setting names to values, e.g. `batch_size = 16`")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(Config)}
    aliases = aliases or {}
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = aliases.get(name, name)
        if name == "docs":
            raise fail("docs is the folder given on the command line (`ragtune run DOCS`), not a setting here")
        if name not in kinds:
            close = difflib.get_close_matches(name, [k for k in [*kinds, *aliases] if k != "docs"], n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else "see `ragtune run --help` for the settings"
            raise fail(f"unknown key {key!r}; {hint}")
        # A field of a type not listed above passes through; Config checks it.
        what, ok, convert = _KINDS.get(kinds[name], ("", lambda v: True, lambda v: v))
        if not ok(value):
            raise fail(f"{key} must be {what}, not {_short_repr(value)}")
        settings[name] = convert(value)
    return settings
