"""Running under torchrun: rank 0 runs the pipeline, the other ranks only train beside it.

Every stage but training reads and writes the run directory, so only rank 0
runs them. When rank 0 reaches training it sends the other ranks what
`fine_tune` needs (pairs, chunks, negatives, validation); they train with it
(the Trainer's DDP keeps the weights in step and lets rank 0 alone save
checkpoints), and wait for the next message. At the end rank 0 sends its
RunResult, which the others return. Without torchrun (WORLD_SIZE unset or 1)
every function here is a no-op and no process group is made.

>>> world_size({}), rank({"RANK": "3", "WORLD_SIZE": "4"})
(1, 3)
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Mapping

# Ranks other than 0 wait in a broadcast while rank 0 extracts, chunks and writes
# questions (hours with an LLM generator): the default 30-minute timeout is too short.
WAIT = timedelta(hours=24)


def world_size(env: Mapping[str, str] = os.environ) -> int:
    return int(env.get("WORLD_SIZE", "1"))


def rank(env: Mapping[str, str] = os.environ) -> int:
    return int(env.get("RANK", "0")) if world_size(env) > 1 else 0


def _group() -> None:
    """Join the process group torchrun describes (the Trainer then uses it as is)."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl", timeout=WAIT)
    else:
        dist.init_process_group("gloo", timeout=WAIT)


def share(message: Any = None) -> Any:
    """Rank 0's `message`, on every rank (sent from rank 0, received by the others)."""
    if world_size() == 1:
        return message
    import torch
    import torch.distributed as dist

    _group()
    box = [message]
    # Pickled objects travel through gloo on the CPU, whatever device the model trains on.
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]
