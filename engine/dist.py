"""Multi-process (DDP) helpers: one process per GPU under ``torchrun``, gloo on CPU.

``torchrun --nproc_per_node=G -m engine train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; ``setup`` reads them. Without them every helper acts as a single
process (rank 0 of 1), so training code calls them unconditionally. Rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from engine.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # True if setup() created the process group (and cleanup() should end it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """WORLD_SIZE from the environment (1 when not under torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """RANK from the environment (0 when not under torchrun)."""
    return int(os.environ.get("RANK", "0"))


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """"auto" -> cuda:<local_rank> if CUDA is available, else cpu; others are checked."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
        if dev.index >= (count := torch.cuda.device_count()):
            raise ConfigError(f"device {name!r} asked for, but this machine has {count} GPU(s) (cuda:0 to cuda:{count - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} asked for, but this torch build or machine has no MPS")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Join the process group described by the torchrun environment, if any.

    Backend: nccl for CUDA devices, gloo for CPU. Returns rank, world size and this process's
    device (cuda:<LOCAL_RANK> under DDP on GPUs).
    """
    world = env_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world <= 1:
        return DistInfo(0, 1, 0, dev, owns_group=False)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = not tdist.is_initialized()
    if owns:
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(tdist.get_rank(), tdist.get_world_size(), local_rank, dev, owns_group=owns)


def is_distributed() -> bool:
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def barrier() -> None:
    if is_distributed():
        tdist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks (in place; returns it)."""
    if is_distributed():
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
        t /= tdist.get_world_size()
    return t


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    """Max of ``t`` over ranks (in place): agree on a flag such as 'stop now'."""
    if is_distributed():
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return t


def cleanup(info: DistInfo | None = None) -> None:
    """End the process group if ``setup`` created it (or, with no info, if one exists)."""
    if tdist.is_available() and tdist.is_initialized() and (info is None or info.owns_group):
        tdist.destroy_process_group()


def run_job(device: str, build, run):
    """setup → ``job = build(info)`` → ``run(job)`` with rank 0 logging to ``job.run_dir`` → cleanup.

    The shared frame of train_teacher and distill: whatever happens, the process group is closed.
    """
    info = setup(device)
    finished = False
    try:
        job = build(info)
        ctx = job.run_dir.logging_to_file() if info.is_main else contextlib.nullcontext()
        with ctx:
            result = run(job)
        finished = True
        return result
    finally:
        if finished and info.owns_group:
            # Every rank past its last collective before any tears the group down: a rank that
            # destroys early can leave gloo's worker threads of another mid-exchange (SIGABRT at exit).
            # Not after an error, where the other ranks may never arrive.
            barrier()
        cleanup(info)
