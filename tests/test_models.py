"""ragtune.models: devices the installed torch cannot use are refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ragtune.models import ModelError, device_problem, load_model


# --- devices ----------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without a usable CUDA device")
def test_load_model_refuses_a_device_torch_cannot_use(tiny_model_dir: Path) -> None:
    # `ragtune search --device cuda` and the pairs commands reach load_model without a Config.
    with pytest.raises(ModelError, match=r"^cannot load model .*: device 'cuda' is not available: .*available: cpu"):
        load_model(str(tiny_model_dir), "cuda")


def test_cpu_is_always_available() -> None:
    assert device_problem("cpu") is None and device_problem("") is None
