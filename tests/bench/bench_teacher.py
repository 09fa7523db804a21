"""Teacher training throughput (samples/s) for one size / grid / batch / device; prints JSON.

Not a test (pytest collects test_*.py only). It runs the real loop, ``train_teacher``, on a
freshly generated darcy set and reports the median samples/s of the reports after warm-up:

    python tests/bench/bench_teacher.py --model small --grid 32 --batch 32 --device cpu --steps 30 --warmup 20
    python tests/bench/bench_teacher.py --model base --grid 64 --batch 512 --device cuda \
        --channels-last --compile --steps 60 --warmup 30      # the GPU fast path
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from engine.config import TeacherConfig
from engine.data.generate import generate_dataset
from engine.diffusion.train import train_teacher
from engine.io.rundir import RunDir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small", choices=["tiny", "small", "base"])
    p.add_argument("--grid", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=30, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps (the CPU needs ~10 to reach speed)")
    p.add_argument("--samples", type=int, default=64, help="size of the generated dataset")
    p.add_argument("--channels-last", action="store_true", help="NHWC layout (TeacherConfig.channels_last)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network (compile time is in --warmup)")
    args = p.parse_args()
    # Report windows of `every` steps; the first window(s) covering --warmup are not timed.
    every = max(1, args.steps // 6)
    skip = -(-args.warmup // every)
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_dataset("darcy", args.samples, args.grid, 0, Path(tmp) / "d.h5").path
        cfg = TeacherConfig(pde="darcy", grid_n=args.grid, dataset=str(data), model=args.model,
                            batch_size=args.batch, steps=every * (skip + max(1, args.steps // every)),
                            warmup_steps=10, report_every=every, checkpoint_minutes=0,
                            holdout_fraction=0.0, device=args.device, channels_last=args.channels_last,
                            compile=args.compile)
        res = train_teacher(cfg, Path(tmp) / "run")
        rates = [r["samples_per_s"] for r in RunDir(Path(tmp) / "run").read_metrics()][skip:]
    print(json.dumps({
        "model": args.model, "grid": args.grid, "batch": args.batch, "device": cfg.device,
        "channels_last": args.channels_last, "compile": args.compile,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
        "torch_threads": torch.get_num_threads(), "n_params": res.n_params, "timed_steps": every * len(rates),
        "samples_per_s_median": statistics.median(rates),
        "samples_per_s_windows": rates,
    }, indent=2))


if __name__ == "__main__":
    main()
