"""Teacher training throughput (samples/s) for one size / grid / batch / device; prints JSON.

Not a test (pytest collects test_*.py only). It runs the real loop, ``train_teacher``, on a
freshly generated darcy set and reports the median samples/s of the reports after warm-up. In the
same run it counts the FLOPs of one training sample (forward + backward of the denoiser, torch's
FlopCounterMode) and times a large matrix product in the training precision (bf16 on CUDA, float32
on the CPU), so ``utilisation`` = samples/s × FLOP/sample ÷ that measured peak:

    python tests/bench/bench_teacher.py --model small --grid 32 --batch 32 --device cpu --steps 30 --warmup 20
    python tests/bench/bench_teacher.py --model base --grid 64 --batch 512 --device cuda \
        --channels-last --compile --steps 60 --warmup 30      # the GPU fast path

torch.compile's inductor settings come from its environment variables and are recorded in the
JSON, with whether the layout optimisation was forced into the backward graph (the trainer does so
on CUDA: ``engine.diffusion.train.force_layout_optimization``; ``TORCHINDUCTOR_FORCE_LAYOUT_OPT=0``
turns it off: a backward graph then holds no forward convolution, keeps its layout choice off and
convolution_backward copies the channels-last activations it is given).

``--profile K`` then trains a fresh run for 20 steps, resumes it for K more under torch.profiler and
prints its table of the ops that took the most device time (CPU time on the CPU) to stderr: where
the gap to the peak is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from engine.config import TeacherConfig
from engine.data.generate import generate_dataset
from engine.diffusion.train import train_teacher
from engine.io.rundir import RunDir


def flops_per_sample(model: str, grid: int, channels: int = 2) -> float:
    """FLOPs of one sample's training step: the denoiser's forward and backward at batch 4, ÷ 4."""
    from torch.utils.flop_counter import FlopCounterMode

    from engine.diffusion.train import build_denoiser

    net = build_denoiser(TeacherConfig(grid_n=grid, model=model), channels)
    x = torch.randn(4, channels, grid, grid)
    with FlopCounterMode(display=False) as counter:
        net(x, torch.full((4,), 1.0)).square().mean().backward()
    return counter.get_total_flops() / 4


def matmul_peak(device: torch.device, n: int = 8192, repeat: int = 20) -> float:
    """Measured FLOP/s of an n×n matrix product in the training precision on ``device``."""
    import time

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type != "cuda":
        n, repeat = 2048, 5
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * n**3 * repeat / (time.perf_counter() - t0)


def profile_steps(cfg: TeacherConfig, run: Path, steps: int, warmup: int = 20, rows: int = 25) -> str:
    """torch.profiler's table of ``steps`` training steps of a fresh run of ``cfg``, heaviest ops first.

    The run's first ``warmup`` steps are taken before the profiler starts (then resumed from their
    checkpoint in the same process): they hold the one-time work — compilation, cuDNN's algorithm
    trials under cudnn.benchmark — that would otherwise dominate the table.
    """
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    short = dataclasses.replace(cfg, steps=warmup, report_every=warmup, preview_every=0)
    train_teacher(short, run)
    with profile(activities=activities) as prof:
        train_teacher(dataclasses.replace(short, steps=warmup + steps), run, resume=True)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


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
    p.add_argument("--compile-mode", default="default", help="torch.compile mode (with --compile)")
    p.add_argument("--profile", type=int, default=0, metavar="K",
                   help="then profile K more steps and print the heaviest ops to stderr")
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
                            compile=args.compile, compile_mode=args.compile_mode)
        res = train_teacher(cfg, Path(tmp) / "run")
        rates = [r["samples_per_s"] for r in RunDir(Path(tmp) / "run").read_metrics()][skip:]
        if args.profile:
            print(profile_steps(cfg, Path(tmp) / "profiled", args.profile), file=sys.stderr)
    dev = torch.device("cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else
                       args.device if args.device not in ("auto",) else "cpu")
    flops, peak = flops_per_sample(args.model, args.grid), matmul_peak(dev)
    rate = statistics.median(rates)
    forced_layout = None  # the trainer forces it on CUDA (engine.diffusion.train.force_layout_optimization)
    if args.compile:
        import torch._inductor.config as inductor_config

        forced_layout = bool(inductor_config.force_layout_optimization)
    print(json.dumps({
        "model": args.model, "grid": args.grid, "batch": args.batch, "device": cfg.device,
        "channels_last": args.channels_last, "compile": args.compile,
        "compile_mode": args.compile_mode if args.compile else None,
        "inductor_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("TORCHINDUCTOR_") and not k.endswith("_DIR")},
        "inductor_force_layout_optimization": forced_layout,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
        "torch_threads": torch.get_num_threads(), "n_params": res.n_params, "timed_steps": every * len(rates),
        "samples_per_s_median": rate,
        "gflop_per_sample": flops / 1e9, "matmul_peak_tflops": peak / 1e12,
        "utilisation": rate * flops / peak,
        "samples_per_s_windows": rates,
    }, indent=2))


if __name__ == "__main__":
    main()
