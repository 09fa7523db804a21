"""Benchmark (a script, not a test): `piddm generate` throughput and peak memory.

    python tests/bench/bench_generate.py [--pde darcy] [--n 1000] [--grid 64]

Runs the command in a child process and reports wall-clock samples/s (import, solves, residual
check and the compressed write included), the command's own samples/s (solves only), and the
child's peak resident memory (getrusage ru_maxrss). Target for darcy, n = 1000, 64²: ≥ 50 samples/s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pde", default="darcy")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--grid", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        cmd = [sys.executable, "-m", "engine.cli.main", "generate", "--pde", args.pde, "--n", str(args.n),
               "--grid", str(args.grid), "-o", str(out), "--json"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        res = json.loads(p.stdout)
        size = out.stat().st_size
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"command": " ".join(["piddm", *cmd[3:-3]]), "n": args.n, "grid": args.grid,
                      "wall_s": round(wall, 2), "samples_per_s_wall": round(args.n / wall, 1),
                      "samples_per_s_solve": round(res["samples_per_s"], 1), "peak_rss_mib": round(peak_mib, 1),
                      "file_mib": round(size / 2**20, 2), "residual_mse": res["residual_mse"]}, indent=2))


if __name__ == "__main__":
    main()
