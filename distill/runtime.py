"""Where a training process runs: its place in a torchrun job, its device, its mixed precision,
and the RNG state a checkpoint carries. One typed object instead of a dict passed around."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

from distill.config import AMP, DEVICE
from pocketbert.common import UsageError
from pocketbert.knobs import check_value


@dataclass(frozen=True)
class RunContext:
    rank: int  # this process's rank in the job (0 without torchrun)
    world_size: int  # processes in the job (torchrun's WORLD_SIZE; 1 alone)
    device: Any  # torch.device the models and batches live on
    amp_dtype: Any  # torch.bfloat16 / torch.float16 for autocast, or None: plain fp32

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files, logs and shows progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            import torch

            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group (after the last barrier)."""
        if self.distributed:
            import torch

            torch.distributed.destroy_process_group()


def setup_run_context(device: str = "auto", amp: str = "auto") -> RunContext:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK, pick the device (cuda:LOCAL_RANK or cpu), join
    the process group (nccl on GPU, gloo on CPU) and resolve the AMP dtype."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    check_value("--device", DEVICE, device)
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but no GPU is visible")
    cuda = torch.cuda.is_available() and device != "cpu"
    dev = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return RunContext(rank=rank, world_size=world, device=dev, amp_dtype=amp_dtype(amp, dev))


def amp_dtype(amp: str, device) -> Any:
    """auto: bf16 on a GPU that has it, else fp16; off on CPU."""
    import torch

    check_value("--amp", AMP, amp)
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def rng_state() -> dict[str, Any]:
    """Every generator a resumed run must continue from (torch, CUDA, numpy, Python)."""
    import numpy as np
    import torch

    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
