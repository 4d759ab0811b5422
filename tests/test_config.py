"""Config validation: every bad setting raises ConfigError naming that setting."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from ragtune.cli import main
from ragtune.config import Config, ConfigError
from tests.test_cli import assert_one_error_line

DOCS = Path("docs")

# (setting, bad value, extra settings it needs so that only this one is wrong)
INVALID = [
    ("extractor", "pdfminer", {}),
    ("generator", "gpt", {}),
    ("chunk_tokens", 15, {"chunk_overlap": 0}),
    ("chunk_tokens", 8193, {}),
    ("chunk_overlap", -1, {}),
    ("chunk_overlap", 128, {"chunk_tokens": 256}),  # must be below half
    ("chunk_overlap", 50, {"chunk_tokens": 100}),
    ("min_chunk_tokens", -1, {}),
    ("min_chunk_tokens", 256, {"chunk_tokens": 256}),
    ("questions_per_chunk", 0, {}),
    ("questions_per_chunk", 51, {}),
    ("eval_fraction", 0.0, {}),
    ("eval_fraction", 0.04, {}),
    ("eval_fraction", 0.51, {}),
    ("epochs", 0, {}),
    ("epochs", -1.0, {}),
    ("batch_size", 1, {}),
    ("learning_rate", 0.0, {}),
    ("learning_rate", 1.0, {}),
    ("warmup_ratio", -0.1, {}),
    ("warmup_ratio", 1.0, {}),
    ("max_steps", 0, {}),
    ("max_steps", -2, {}),
    ("device", "tpu", {}),
    ("device", "gpu:0", {}),
    ("ks", (), {}),
    ("ks", (0, 5), {}),
    ("ks", (1, -3), {}),
    ("passage_stride", -1, {}),
    ("passage_stride", 21, {}),
]


@pytest.mark.parametrize(("setting", "value", "extra"), INVALID, ids=[f"{s}={v!r}" for s, v, _ in INVALID])
def test_invalid_setting_raises_config_error_naming_it(setting: str, value: object, extra: dict) -> None:
    # The extra settings alone are valid, so the error can only come from `setting`.
    Config(docs=DOCS, **extra)
    with pytest.raises(ConfigError) as e:
        Config(docs=DOCS, **extra, **{setting: value})
    assert setting in str(e.value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("extractor", "pdfminer"),
        ("generator", "gpt"),
        ("chunk_tokens", 8193),
        ("questions_per_chunk", 51),
        ("eval_fraction", 0.9),
        ("batch_size", 1),
    ],
)
def test_error_message_shows_the_bad_value(setting: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        Config(docs=DOCS, **{setting: value})
    assert str(value) in str(e.value)


def test_error_lists_the_allowed_choices() -> None:
    with pytest.raises(ConfigError) as e:
        Config(docs=DOCS, generator="llm")
    assert "offline" in str(e.value) and "template" in str(e.value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Config(docs=DOCS, batch_size=0)


@pytest.mark.parametrize(
    "settings",
    [
        {"chunk_tokens": 16, "chunk_overlap": 7, "min_chunk_tokens": 15},
        {"chunk_tokens": 8192},
        {"eval_fraction": 0.05, "questions_per_chunk": 1},
        {"eval_fraction": 0.5, "questions_per_chunk": 50},
        {"batch_size": 2, "max_steps": 1, "warmup_ratio": 0.0},
        {"device": "cpu", "extractor": "pypdfium2", "generator": "template"},
        {"ks": (1,)},
        {"passage_stride": 0},
        {"passage_stride": 20},
    ],
)
def test_boundary_values_are_accepted(settings: dict) -> None:
    cfg = Config(docs=DOCS, **settings)
    for k, v in settings.items():
        assert getattr(cfg, k) == v


def test_replace_validates_too() -> None:
    cfg = Config(docs=DOCS)
    assert cfg.replace(batch_size=8).batch_size == 8
    with pytest.raises(ConfigError, match="batch_size"):
        cfg.replace(batch_size=1)


def test_config_is_frozen() -> None:
    cfg = Config(docs=DOCS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]


def test_to_dict_is_json_safe() -> None:
    cfg = Config(docs=Path("some/docs"), out=Path("runs/x"), themes_file=Path("t.yaml"), ks=(1, 5))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["docs"] == str(Path("some/docs"))
    assert d["themes_file"] == "t.yaml"
    assert d["ks"] == [1, 5]
    assert set(d) == {f.name for f in dataclasses.fields(Config)}


def test_pick_device_prefers_cuda_then_apples_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ragtune.models import pick_device

    assert pick_device("cuda:1") == "cuda:1"
    # This machine has neither accelerator; what each would make pick_device choose:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("") == "cpu"


# --- non-finite numbers ---------------------------------------------------------------------

FLOATS = [f.name for f in dataclasses.fields(Config) if f.type in ("float", "float | None")]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("setting", FLOATS)
def test_every_float_setting_must_be_finite(setting: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^{setting} must be a finite number, not -?(inf|nan)$"):
        Config(docs=DOCS, **{setting: value})


def test_float_settings_are_found() -> None:
    # The check walks the fields typed float; a rename of that type would silently skip them all.
    assert {"epochs", "learning_rate", "llm_timeout", "hybrid_weight"} <= set(FLOATS)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--epochs", "inf"], "--epochs must be a finite number, not inf"),
        (["--lr", "nan"], "--lr must be a finite number, not nan"),
        (["--llm-timeout", "inf"], "--llm-timeout must be a finite number, not inf"),
    ],
)
def test_cli_rejects_non_finite_numbers_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "run"), *flags]) == 1

    assert assert_one_error_line(capsys.readouterr().err) == f"ragtune: error: {expected}"
    assert not (tmp_path / "run").exists()


def test_config_file_infinity_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("epochs = inf\n")

    assert main(["run", str(tmp_path), "--config", str(settings)]) == 1

    assert_one_error_line(capsys.readouterr().err, f"config file {settings}: epochs must be a finite number, not inf")


# --- devices the installed torch cannot use ---------------------------------------------------

cpu_only = pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="needs a torch that has neither CUDA nor MPS"
)


@cpu_only
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:9", "mps"])
def test_device_this_torch_cannot_use_is_rejected(device: str) -> None:
    with pytest.raises(ConfigError, match=rf"^device '{device}' is not available: .*; available: cpu\b") as e:
        Config(docs=DOCS, device=device)
    reason = "built without CUDA" if device.startswith("cuda") and torch.version.cuda is None else "finds no"
    assert reason in str(e.value)


@cpu_only
def test_cli_device_cuda_on_cpu_torch_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "run"), "--device", "cuda:9"]) == 1

    assert_one_error_line(capsys.readouterr().err, "device 'cuda:9' is not available", "available: cpu")


@pytest.mark.parametrize("device", ["", "cpu"])
def test_cpu_and_automatic_device_always_pass(device: str) -> None:
    assert Config(docs=DOCS, device=device).device == device


def test_cuda_index_must_be_a_number() -> None:
    with pytest.raises(ConfigError, match=r"^device must be cpu, cuda, cuda:N or mps, not 'cuda:first'$"):
        Config(docs=DOCS, device="cuda:first")
