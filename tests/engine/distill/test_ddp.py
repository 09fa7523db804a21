"""DDP: two gloo processes distill in lockstep (rank 0 writes), like the teacher."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from engine.distill.config import DistillConfig
from engine.distill.train import distill


def _worker(rank: int, world: int, port: int, cfg: DistillConfig, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    res = distill(cfg, os.path.join(out, "run"))
    torch.save(res.ema.state_dict(), os.path.join(out, f"rank{rank}.pt"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_distill_to_identical_students(distill_cfg, tmp_path):
    cfg = distill_cfg(steps=3, batch_size=4)
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3 and all(torch.equal(ckpt["ema"][k], r0[k]) for k in r0)
    # Averaged gradients of two slices of 4 = one process on the global batch of 8 (up to round-off).
    single = distill(distill_cfg(steps=3, batch_size=8), tmp_path / "single").ema.state_dict()
    assert all(torch.allclose(single[k], r0[k], atol=1e-5, rtol=1e-4) for k in single)
