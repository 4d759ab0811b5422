"""`ragtune run --config FILE`: a TOML or YAML file sets Config fields, flags win over it, and each mistake in it is
one `ragtune: error:` line that names the file and the key (or line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import assert_one_error_line

from ragtune.cli import _config_from_args, _flag_aliases, _with_config_file, build_parser, main
from tests.support.runs import run_args


def config_run(tmp_path: Path, model_dir: Path, name: str, content: str, *flags: str) -> tuple[int, str]:
    """Run with --config; each case here fails before the docs folder is read."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code = main(run_args(tmp_path / "docs", tmp_path / "run", model_dir, "--config", str(path), *flags))
    return code, str(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.toml", "batch_sise = 8\n", "unknown key 'batch_sise'; did you mean batch_size or mini_batch_size?"),
        (
            "c.yaml",
            "chunk-tokns: 64\n",
            "unknown key 'chunk-tokns'; did you mean chunk_tokens or min_chunk_tokens or chunk_weight?",
        ),
        ("c.toml", "colour = 'red'\n", "unknown key 'colour'; see `ragtune run --help` for the settings"),
        ("c.toml", "batch_size = 'eight'\n", "batch_size must be a whole number, not 'eight'"),
        ("c.yaml", "hard-negatives: maybe\n", "hard-negatives must be true or false, not 'maybe'"),
        ("c.toml", "matryoshka_dims = [256, 'x']\n", "matryoshka_dims must be a list of whole numbers, not [256, 'x']"),
        (
            "c.toml",
            "epochs = 2\nbatch_size = 8 8\n",
            "not valid TOML: Expected newline or end of document after a statement (at line 2, column 16)",
        ),
        (
            "c.yaml",
            "epochs: 2\nbatch_size: [8\n",
            "not valid YAML: line 3, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        ("c.toml", "epochs = 0\n", "epochs must be > 0, not 0.0"),
        ("c.toml", "docs = 'elsewhere'\n", "docs is the folder given on the command line"),
        ("c.toml", "[train]\nepochs = 1\n", "unknown key 'train'"),
        ("c.ini", "epochs = 2\n", None),
    ],
    ids=[
        "close_match",
        "hyphen_close_match",
        "no_match",
        "type",
        "bool",
        "list",
        "toml_line",
        "yaml_line",
        "range",
        "docs",
        "table",
        "suffix",
    ],
)
def test_config_file_errors_name_file_and_key(
    tmp_path: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    message: str | None,
) -> None:
    code, path = config_run(tmp_path, tiny_model_dir, name, content)
    assert code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    line = assert_one_error_line(err)
    if message is None:
        assert (
            line == f"ragtune: error: config file {path} must end in .toml, .yaml, .yml or .json (a run's config.json)"
        )
    else:
        assert line.startswith(f"ragtune: error: config file {path}: {message}"), line


def test_missing_config_file(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run_args(tmp_path, tmp_path / "run", tiny_model_dir, "--config", str(tmp_path / "nope.toml"))) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == f"ragtune: error: cannot read config file {tmp_path / 'nope.toml'}: No such file or directory"


def test_a_flag_fixes_a_bad_config_value_and_a_flag_error_does_not_blame_the_file(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The flag wins, so the file's bad batch_size never counts; the run goes on to the (missing) docs.
    code, _ = config_run(tmp_path, tiny_model_dir, "c.toml", "batch_size = 1\n", "--batch-size", "4")
    assert code == 1 and "does not exist" in capsys.readouterr().err
    code, _ = config_run(tmp_path, tiny_model_dir, "c.toml", "epochs = 1\n", "--batch-size", "1")
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == "ragtune: error: --batch-size must be >= 2 (in-batch negatives need company), not 1"


@pytest.mark.parametrize("name", ["c.toml", "c.yaml"])
def test_config_file_sets_fields_and_flags_override_it(tmp_path: Path, name: str) -> None:
    toml = (
        "chunk-tokens = 64\nchunk_overlap = 8\nlr = 1e-4\nbatch_size = 8\nhard_negatives = true\n"
        "matryoshka_dims = [256, 64]\nthemes = 'my_themes.yaml'\nweight_decay = 0\nks = [1, 5]\n"
    )
    path = tmp_path / name
    path.write_text(toml if name.endswith(".toml") else toml.replace(" = ", ": "), encoding="utf-8")
    argv = ["run", "docs", "--config", str(path), "--batch-size", "16"]
    cfg = _config_from_args(_with_config_file(build_parser().parse_args(argv), argv))
    assert (cfg.chunk_tokens, cfg.learning_rate, cfg.batch_size, cfg.hard_negatives) == (64, 1e-4, 16, True)
    assert cfg.matryoshka_dims == (256, 64) and cfg.themes_file == Path("my_themes.yaml")
    assert cfg.weight_decay == 0.0 and isinstance(cfg.weight_decay, float) and cfg.ks == (1, 5)
    assert cfg.docs == Path("docs") and cfg.chunk_overlap == 8 and cfg.seed == 13  # the rest keep their defaults


def test_config_file_knows_every_field_type() -> None:
    import dataclasses

    from ragtune.config import Config
    from ragtune.config_file import _KINDS

    # A field of a new type would be passed through unchecked; teach load_config_file about it.
    assert {str(f.type) for f in dataclasses.fields(Config)} <= set(_KINDS)


def test_flag_aliases_map_to_config_fields() -> None:
    aliases = _flag_aliases()
    assert aliases["lr"] == "learning_rate" and aliases["themes"] == "themes_file"
    assert aliases["pairs"] == "pairs_files" and aliases["push"] == "push_repo"
    assert "no_wise" not in aliases and "help" not in aliases
