"""DDP: two gloo processes on the CPU train in lockstep, like one process with their global batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from engine.config import TeacherConfig
from engine.diffusion.train import train_teacher


def _worker(rank: int, world: int, port: int, cfg: TeacherConfig, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    res = train_teacher(cfg, os.path.join(out, "run"))
    torch.save({"model": res.model.state_dict(), "ema": res.ema.state_dict()}, os.path.join(out, f"rank{rank}.pt"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_end_with_identical_weights(tiny_cfg, tmp_path):
    cfg = tiny_cfg(steps=3, batch_size=2, device="cpu")
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("model", "ema"):
        assert all(torch.equal(r0[part][k], r1[part][k]) for k in r0[part]), part
    # Rank 0 wrote the run; its checkpoint holds the same weights.
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3 and all(torch.equal(ckpt["model"][k], r0["model"][k]) for k in r0["model"])
    # Averaged gradients of two slices = one process on the whole global batch (up to round-off).
    single = train_teacher(tiny_cfg(steps=3, batch_size=4, device="cpu"), tmp_path / "single")
    ref = single.model.state_dict()
    assert all(torch.allclose(ref[k], r0["model"][k], atol=1e-5, rtol=1e-4) for k in ref)
