"""Bundle a folder of finished runs (teacher/, piddm/, distill/) as a model set under resources/models.

make_models.py trains and bundles in one go; this takes runs trained some other way (on a CPU over
hours, resumed, by hand) and gives them the same form: EMA weights in float16 (``slim``), a card with
the training record read from each run (config.json, metrics.jsonl), the generation bench of the
same folder (a ``piddm bench --task generate -o`` JSON) and the tuned guidance weights if the runs'
cards hold them (``tune_guidance.py --models``).

    .venv/bin/python packaging/bundle_runs.py RUNS --bench BENCH.json --out resources/models/darcy-32 \\
        --hardware "2-core CPU" --data "piddm generate --pde darcy --n 1200 --grid 32"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_models import slim  # noqa: E402

from engine import __version__  # noqa: E402
from engine.bench import model_costs  # noqa: E402
from engine.io.checkpoint import load_checkpoint  # noqa: E402
from engine.models import read_card  # noqa: E402


def run_config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


def dataset_record(path: str, generator: str) -> dict:
    """The teacher's dataset for the card: its name, and its size and seed if the file is still there."""
    record = {"dataset": Path(path).name, "generator": generator}
    if Path(path).is_file():
        with h5py.File(path, "r") as f:
            record.update(n=int(f["fields"].shape[0]), seed=int(f.attrs.get("seed", -1)))
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="folder with teacher/, piddm/ and optionally distill/")
    ap.add_argument("--bench", type=Path, required=True, help="generation bench JSON of that folder")
    ap.add_argument("--out", type=Path, required=True, help="resources/models/<pde> or <pde>-<grid>")
    ap.add_argument("--hardware", default="CPU")
    ap.add_argument("--data", default="", help="the command that made the teacher's dataset (for the card)")
    args = ap.parse_args(argv)
    teacher_cfg = run_config(args.runs / "teacher")
    bench = json.loads(args.bench.read_text())
    if bench.get("pde") != teacher_cfg["pde"] or bench.get("grid") != teacher_cfg["grid_n"]:
        raise SystemExit(f"{args.bench} is a bench of {bench.get('pde')} {bench.get('grid')}², "
                         f"the runs are {teacher_cfg['pde']} {teacher_cfg['grid_n']}²")
    ckpt = load_checkpoint(args.runs / "teacher")
    pde, n = teacher_cfg["pde"], teacher_cfg["grid_n"]
    teacher_cost = model_costs(args.runs / "teacher")
    base = {"pde": pde, "grid": n, "model_size": teacher_cfg["model"],
            "parameters": sum(v.numel() for v in ckpt["ema"].values()), "software_version": __version__,
            "hardware": args.hardware,
            "data": {**dataset_record(teacher_cfg["dataset"], args.data),
                     "held_out_fraction": teacher_cfg["holdout_fraction"]},
            "teacher_training": {**teacher_cost, "batch": teacher_cfg["batch_size"], "lr": teacher_cfg["lr"]},
            "bench_generate": bench["table"], "bench_generate_costs": bench.get("costs", {}),
            "recipe": "packaging/bundle_runs.py"}
    slim(args.runs / "teacher", args.out / "teacher",
         {**base, "kind": "teacher", "name": "teacher", "training": base["teacher_training"]})
    print(f"{args.out / 'teacher'}: bundled", flush=True)
    for name in ("distill", "piddm"):
        run = args.runs / name
        if not (run / "checkpoint.pt").is_file():
            continue
        cfg = run_config(run)
        card = {**base, "kind": "student", "name": name, "lambda": cfg["lam"],
                "training": {**model_costs(run), "pairs": cfg["pairs"], "refresh": cfg["refresh"],
                             "batch": cfg["batch_size"], "lr": cfg["lr"], "lambda_warmup": cfg["lam_warmup"],
                             "physics_on": cfg["physics_on"]}}
        tuned = read_card(run)
        for key in ("guidance", "guidance_tuning"):
            if key in tuned:
                card[key] = tuned[key]
        slim(run, args.out / name, card)
        print(f"{args.out / name}: bundled", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
