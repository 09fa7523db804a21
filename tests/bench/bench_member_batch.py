"""What one latent step costs per member as the batch of members grows; not a test.

A latent solve optimises every member of every case in one batch (B·E members through the student,
forward and backward). On a GPU a larger batch is cheaper per member; on a CPU the per-member cost
rises once the activations outgrow the caches, which makes a bench or a ``piddm solve`` of many cases
× members slower per member than one of a few. This times one generator evaluation and its
backward pass (what a latent step costs, less the residual) at each batch size:

    python tests/bench/bench_member_batch.py --models resources/models/poisson/piddm [--device cpu]
        [--batches 8 16 32 64 128] [--repeats 3]

Prints seconds per step and milliseconds per member (the last of --repeats, after warm-up).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.models import load_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "resources" / "models" / "poisson" / "piddm"),
                    help="a student folder (a bundled piddm/ or distill/, or a distillation run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    student = load_model(args.models, args.device).student
    print(f"{args.models}: {student.grid.n}², {args.device}, {torch.get_num_threads()} threads")
    for batch in args.batches:
        eps = student.noise(list(range(batch))).detach().clone().requires_grad_(True)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            student.generate(eps).square().sum().backward()
            if eps.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
        print(f"batch {batch:4d}: {seconds:.3f} s per step, {seconds / batch * 1e3:.1f} ms per member", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
