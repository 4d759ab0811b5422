"""ragtune.models refuses models that would run their own code, in one line, and runs none of it.

Each hostile model is a real folder: the tiny BERT fixture copied into tmp_path,
then given a custom module class, a custom architecture, or a weights pickle
that would write a marker file if it were ever unpickled.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ragtune.cli import main
from ragtune.models import ModelError, device_problem, load_model
from tests.test_cli import assert_one_error_line

# What every refusal tells the user to do instead.
ADVICE = "ragtune never runs a model's own code"


def copy_model(tiny_model_dir: Path, dest: Path) -> Path:
    shutil.copytree(tiny_model_dir, dest)
    return dest


class _WritesMarker:
    """Unpickling this calls open(path, "w"): code in a weights file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


@pytest.fixture
def custom_module_model(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """modules.json names evil_pkg.Pooling, an importable module that writes a marker when imported."""
    model = copy_model(tiny_model_dir, tmp_path / "custom")
    modules = json.loads((model / "modules.json").read_text())
    modules[1]["type"] = "evil_pkg.Pooling"
    (model / "modules.json").write_text(json.dumps(modules))
    code = tmp_path / "code"
    code.mkdir()
    (code / "evil_pkg.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\nPooling = object\n")
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.delitem(sys.modules, "evil_pkg", raising=False)
    return model


def test_custom_module_class_is_refused_without_running_it(custom_module_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError) as e:
        load_model(str(custom_module_model))

    message = str(e.value)
    assert message.startswith(
        f"refused to load model {str(custom_module_model)!r}: its modules.json names "
        "'evil_pkg.Pooling', which is not part of sentence-transformers; "
    )
    assert ADVICE in message and "\n" not in message
    assert not (tmp_path / "ran").exists() and "evil_pkg" not in sys.modules


def test_custom_architecture_is_refused_without_running_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = copy_model(tiny_model_dir, tmp_path / "automap")
    config = json.loads((model / "config.json").read_text())
    config.update(
        model_type="evilbert",
        auto_map={"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"},
    )
    (model / "config.json").write_text(json.dumps(config))
    (model / "configuration_evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")

    with pytest.raises(
        ModelError,
        match=r"^refused to load model .*: it needs its own code to load \(a custom "
        rf"architecture\); {ADVICE}",
    ):
        load_model(str(model))
    assert not (tmp_path / "ran").exists()


def pickle_weights(model: Path, extra: dict) -> None:
    """Replace model.safetensors with pytorch_model.bin: the same tensors (and `extra`) as a torch pickle."""
    state = {**load_file(str(model / "model.safetensors")), **extra}
    (model / "model.safetensors").unlink()
    torch.save(state, model / "pytorch_model.bin")


def test_weights_pickle_that_runs_code_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = copy_model(tiny_model_dir, tmp_path / "pickled")
    marker = tmp_path / "ran"
    pickle_weights(model, {"payload": _WritesMarker(marker)})

    with pytest.raises(ModelError) as e:
        load_model(str(model))

    message = str(e.value)
    assert re.match(
        rf"refused to load model {re.escape(repr(str(model)))}: its weights are a pickle that would run "
        r"code when loaded \(it calls (io|builtins)\.open\); ",
        message,
    ), message
    assert ADVICE in message and "model.safetensors" in message and "\n" not in message
    assert not marker.exists()


def test_weights_pickle_of_plain_tensors_still_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    # Older models ship pytorch_model.bin only; a pickle of tensors alone runs nothing and stays usable.
    model = copy_model(tiny_model_dir, tmp_path / "plain-bin")
    pickle_weights(model, {})

    assert load_model(str(model)).encode(["zero trust"]).shape == (1, 32)


def test_cli_run_refuses_a_hostile_base_model_in_one_line(
    custom_module_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Zero trust assumes no implicit trust in any network location. " * 40)

    code = main(
        ["run", str(docs), "--out", str(tmp_path / "run"), "--base-model", str(custom_module_model), "--device", "cpu"]
    )

    assert code == 1
    assert_one_error_line(capsys.readouterr().err, "refused to load model", "'evil_pkg.Pooling'", ADVICE)
    assert not (tmp_path / "ran").exists()


# --- devices ----------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without a usable CUDA device")
def test_load_model_refuses_a_device_torch_cannot_use(tiny_model_dir: Path) -> None:
    # `ragtune search --device cuda` and the pairs commands reach load_model without a Config.
    with pytest.raises(ModelError, match=r"^cannot load model .*: device 'cuda' is not available: .*available: cpu"):
        load_model(str(tiny_model_dir), "cuda")


def test_cpu_is_always_available() -> None:
    assert device_problem("cpu") is None and device_problem("") is None


def test_loading_a_local_model_leaves_the_environment_as_it_was(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    # conftest sets HF_HUB_OFFLINE for the whole session; a library user may not have.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = dict(os.environ)
    model = load_model(str(tiny_model_dir), "cpu")
    assert model.get_embedding_dimension() > 0
    assert dict(os.environ) == before


def test_quiet_libraries_puts_the_callers_levels_back() -> None:
    import logging

    import datasets
    from transformers.utils import logging as hf_logging

    from ragtune.models import quiet_libraries

    verbosity, bars = hf_logging.get_verbosity(), datasets.is_progress_bar_enabled()
    hf_logging.set_verbosity_info()
    datasets.enable_progress_bars()
    logging.getLogger("sentence_transformers").setLevel(logging.DEBUG)
    try:
        with quiet_libraries():
            assert hf_logging.get_verbosity() == hf_logging.ERROR and not datasets.is_progress_bar_enabled()
            assert logging.getLogger("sentence_transformers").level == logging.WARNING
        assert hf_logging.get_verbosity() == hf_logging.INFO and datasets.is_progress_bar_enabled()
        assert logging.getLogger("sentence_transformers").level == logging.DEBUG
    finally:
        hf_logging.set_verbosity(verbosity)
        (datasets.enable_progress_bars if bars else datasets.disable_progress_bars)()
        logging.getLogger("sentence_transformers").setLevel(logging.NOTSET)


def test_encoding_in_bf16_autocasts_the_forward_pass_and_stays_close_to_fp32(tiny_model) -> None:
    import numpy as np

    from ragtune.models import encoding_in
    from ragtune.retrieval import embed

    texts = ["incident response playbooks", "zero trust architecture", "the firewall logs every denied packet"]
    seen: list[torch.dtype] = []
    linear = next(m for m in tiny_model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    plain = embed(tiny_model, texts)
    with encoding_in("fp32", "cpu"):
        same = embed(tiny_model, texts)
    with encoding_in("bf16", "cpu"):
        low = embed(tiny_model, texts)
    after = embed(tiny_model, texts)
    # fp32 leaves the arithmetic alone; bf16 runs the linear layers in bf16, and only inside the block.
    assert np.array_equal(plain, same) and np.array_equal(plain, after)
    assert set(seen) == {torch.float32, torch.bfloat16} and not np.array_equal(plain, low)
    assert low.dtype == np.float32 and float((plain * low).sum(axis=1).min()) > 0.99
