"""Re-create the bundled models from nothing: generate → train teacher → distill → bench → bundle.

    python packaging/make_models.py --device cuda --grid 64 --out resources/models          # GPU recipe
    python packaging/make_models.py --device cpu --grid 32 --teacher-minutes 30 ...           # CPU recipe

For each PDE: a reference-solved dataset (seed 0), a teacher trained for a fixed wall-clock
budget, a pure-distillation student (λ = 0) and a PIDDM student (λ = --lam, ramped in over the
first half), optionally a λ sweep (--sweep PDE ...), then ``bench_generate`` on all of them. The
bundled copy of each model keeps only the EMA weights in half precision plus a model card.
Work happens in --work; bundles are written to --out/<pde>/{teacher,piddm,distill}/ and, with
--tar, packed one tar per PDE. A --deadline (seconds) skips the optional steps once passed.
--tune then tunes the latent solve of the students made (``tune_solve.tune_set``, as
``packaging/tune_solve.py`` does for a bundled set) before they are packed.

With --teacher-from SET (a bundled set, e.g. resources/models) the teacher of SET/<pde> is kept and
only its students are distilled again (--ablation-minutes 0 keeps SET's λ = 0 student too); SET's
PIDDM student is benched beside the new one as ``bundled-piddm``, and the cards keep SET's tuned
guidance weights (they belong to the teacher, which did not change).

With --teacher-init SET the teacher of SET/<pde> is trained further instead (warm start from its EMA
weights and normaliser, a fresh optimiser, --teacher-steps with the lr falling to 0 over the last
--teacher-cooldown of them; the data is generated again with the same seed, so the held-out split is
the same). --distill-minutes 0 keeps SET's students as they are (their cards say which teacher they
were distilled from); the bench then rates the new teacher beside them.

With --student-init (beside --teacher-from or --teacher-init SET) the students that are distilled
start from SET's students of the same name instead of from the teacher (``DistillConfig.init_from``):
the young bundled students go on learning, from the set's teacher or from its trained-on successor
(which keeps their normaliser), with λ at full weight from the first step (they ended their own run
there). Their cards add up both runs, as the teacher's do. --piddm-init distill starts the PIDDM student
from SET's λ = 0 student instead (λ then ramps in over the first half, as for a fresh student): a
physics-informed student that begins from the better latent-solve prior.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_solve import tune_set  # noqa: E402

from engine import __version__  # noqa: E402
from engine.bench import bench_generate, format_table  # noqa: E402
from engine.config import TeacherConfig  # noqa: E402
from engine.data.generate import generate_dataset  # noqa: E402
from engine.diffusion.train import train_teacher  # noqa: E402
from engine.dist import resolve_device  # noqa: E402
from engine.distill.config import PHYSICS_ON, DistillConfig  # noqa: E402
from engine.distill.train import distill  # noqa: E402
from engine.io.atomic import write_text  # noqa: E402
from engine.io.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

T0 = time.perf_counter()
BUNDLED = ("distill", "piddm")  # the students a set ships (the sweep's stay in --work)


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def slim(src: Path, dst: Path, card: dict) -> None:
    """Bundle a run: EMA weights in float16, no optimiser or pairs, plus card.json."""
    ckpt = load_checkpoint(src)
    ema = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["ema"].items()}
    keep = {k: v for k, v in ckpt.items() if k not in ("model", "ema", "optimizer", "rng", "pair_seeds")}
    keep["ema"] = ema
    if keep.get("kind") == "student":
        keep["teacher"] = "../teacher"  # bundled students find their teacher beside them
        keep["config"] = {**keep["config"], "teacher": "../teacher"}
        keep["teacher_config"] = {**keep["teacher_config"],
                                  "dataset": Path(keep["teacher_config"]["dataset"]).name}
    if "config" in keep and "dataset" in keep["config"]:
        keep["config"] = {**keep["config"], "dataset": Path(keep["config"]["dataset"]).name}
    if "data" in keep and "dataset" in keep["data"]:
        keep["data"] = {**keep["data"], "dataset": Path(keep["data"]["dataset"]).name}
    dst.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst / "checkpoint.pt", keep)
    write_text(dst / "card.json", json.dumps(card, indent=2, default=str) + "\n")


def init_source(args: argparse.Namespace, name: str) -> str:
    """The set's student that student ``name`` starts from under --student-init ("" = the teacher)."""
    if not args.student_init or name not in BUNDLED:
        return ""
    return args.piddm_init if name == "piddm" else name


def teacher_curve(tcfg: TeacherConfig, work: Path, parts: int, args: argparse.Namespace, out: Path):
    """Train the teacher in ``parts`` equal slices of its budget (each a resume of the last, which
    follows the uninterrupted run), benching its EMA weights after each: quality against training time."""
    points, seconds = [], 0.0
    for k in range(1, parts + 1):
        cfg = dataclasses.replace(tcfg, minutes=tcfg.minutes * k / parts)
        tres = train_teacher(cfg, work / "teacher", resume=k > 1)
        seconds += tres.seconds  # a result's seconds are its own part's
        tres = dataclasses.replace(tres, seconds=seconds, samples_per_s=tres.step * tcfg.batch_size / seconds)
        # Only the teacher is in ``work`` yet, so the bench has the held-out data and teacher rows.
        bench = bench_generate(work, n=args.bench_n, seeds=1, sampler_steps=args.sampler_steps, device=args.device)
        data, teacher = (bench["table"][row] for row in ("held-out data", f"teacher (Heun {args.sampler_steps})"))
        ratios = {m: teacher[m]["mean"] / data[m]["mean"] for m in teacher if m.startswith(("mmse_", "smse_"))}
        points.append({"seconds": tres.seconds, "steps": tres.step, "loss": tres.loss, "ratios_to_data": ratios,
                       "table": bench["table"]})
        log(f"{tcfg.pde}: teacher after {tres.seconds:.0f} s ({tres.step} steps, loss {tres.loss:.4f}): "
            + ", ".join(f"{m} {r:.2f}×" for m, r in ratios.items()))
    out.mkdir(parents=True, exist_ok=True)
    record = {"pde": tcfg.pde, "grid": tcfg.grid_n, "model": tcfg.model, "batch": tcfg.batch_size, "lr": tcfg.lr,
              "ema_halflife_steps": tcfg.ema_halflife_steps, "n_data": args.n_data, "bench_n": args.bench_n,
              "sampler_steps": args.sampler_steps, "points": points}
    write_text(out / f"{tcfg.pde}-teacher-curve.json", json.dumps(record, indent=2) + "\n")
    return tres


def reuse_set(src: Path, work: Path) -> dict:
    """Copy a bundled set's teacher (and its students, for comparison) into ``work``; its teacher card."""
    if not (src / "teacher" / "card.json").is_file():
        raise SystemExit(f"{src}: no bundled teacher there (expected teacher/card.json)")
    shutil.copytree(src / "teacher", work / "teacher")
    if (src / "piddm").is_dir():
        shutil.copytree(src / "piddm", work / "bundled-piddm")
    return json.loads((src / "teacher" / "card.json").read_text())


def kept_card(src: Path, base_card: dict) -> None:
    """Re-card a model kept unchanged from a reused set: the new set's bench; its own training record and
    the software version that made it stay. A student whose teacher was trained on since says so."""
    card = json.loads((src / "card.json").read_text())
    card["bench_generate"] = base_card["bench_generate"]
    if card.get("kind") == "student" and "continued_from" in base_card["teacher_training"]:
        card["teacher_at_distillation"] = card.get("teacher_at_distillation", card["teacher_training"])
        card["teacher_training"] = base_card["teacher_training"]
    write_text(src / "card.json", json.dumps(card, indent=2, default=str))


def carried_guidance(src: Path) -> dict:
    """The tuned guidance weights of a bundled set (tune_guidance writes them into the students' cards)."""
    card = src / "piddm" / "card.json"
    card = json.loads(card.read_text()) if card.is_file() else {}
    return {k: card[k] for k in ("guidance", "guidance_tuning") if k in card}


def continued_record(old: dict, tres, tcfg: TeacherConfig) -> dict:
    """The card's teacher_training of a warm-started teacher: totals over both runs, each run apart."""
    run = {"seconds": tres.seconds, "steps": tres.step, "batch": tcfg.batch_size, "lr": tcfg.lr,
           "cooldown": tcfg.cooldown, "samples_per_s": tres.samples_per_s, "final_loss": tres.loss,
           "compiled": tcfg.compile}
    return {"seconds": old["seconds"] + tres.seconds, "steps": old["steps"] + tres.step,
            "batch": tcfg.batch_size, "samples_per_s": tres.samples_per_s, "final_loss": tres.loss,
            "compiled": tcfg.compile, "continued_from": old, "continuation": run}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdes", nargs="+", default=["darcy", "poisson", "helmholtz", "burgers"])
    ap.add_argument("--grid", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="small", help="U-Net size of teacher and students")
    ap.add_argument("--n-data", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=128, help="batch of the students (and of the teacher by default)")
    ap.add_argument("--teacher-batch", type=int, help="batch of the teacher (default --batch)")
    ap.add_argument("--teacher-ema", type=float, default=100, help="EMA half-life of the teacher, in steps")
    ap.add_argument("--teacher-minutes", type=float, nargs="+", default=[1.5],
                    help="one budget for all PDEs, or one per PDE")
    ap.add_argument("--teacher-curve", type=int, default=0, metavar="K",
                    help="train the teacher in K equal parts, benching it after each (its quality against "
                         "training time, in <tar>/<pde>-teacher-curve.json)")
    ap.add_argument("--teacher-compile", action="store_true",
                    help="torch.compile the teacher's network (the compile is inside its budget: on an H200 1.7× "
                         "the samples/s once compiled, after a cold compile of about 80 s)")
    ap.add_argument("--distill-minutes", type=float, default=0.2)
    ap.add_argument("--ablation-minutes", type=float,
                    help="budget of the λ = 0 student (default --distill-minutes; 0 with --teacher-from keeps "
                         "the set's)")
    ap.add_argument("--teacher-from", type=Path, metavar="SET",
                    help="keep the teacher of SET/<pde> (a bundled set) and distill only the students")
    ap.add_argument("--teacher-init", type=Path, metavar="SET",
                    help="train the teacher of SET/<pde> further (warm start); --distill-minutes 0 keeps its students")
    ap.add_argument("--teacher-steps", type=int, help="step cap of the teacher (default: its minutes decide)")
    ap.add_argument("--teacher-cooldown", type=float, default=0.0,
                    help="fraction of --teacher-steps over which the teacher's lr falls to 0 at the end")
    ap.add_argument("--student-init", action="store_true",
                    help="with --teacher-from / --teacher-init SET: distill the students on from SET's students "
                         "(warm start) instead of from the teacher")
    ap.add_argument("--piddm-init", choices=BUNDLED, default="piddm",
                    help="with --student-init: which of SET's students the PIDDM student starts from")
    ap.add_argument("--distill-lr", type=float, help="student lr (default 2e-4 on a GPU, 1e-4 on the CPU)")
    ap.add_argument("--student-ema", type=float, default=50, help="EMA half-life of the students, in steps")
    ap.add_argument("--refresh", type=int, default=0, help="steps between pair refreshes (0 = never)")
    ap.add_argument("--sweep-minutes", type=float, default=0.12)
    ap.add_argument("--lam", type=float, default=0.1, help="λ_train of the bundled PIDDM student")
    ap.add_argument("--physics-on", default="all", choices=PHYSICS_ON,
                    help="entries the residual term moves (no effect on the λ = 0 student)")
    ap.add_argument("--sampler-steps", type=int, default=18, help="teacher Heun steps N_s of the pairs and the bench")
    ap.add_argument("--sweep", nargs="*", default=["darcy"], help="PDEs that get the λ sweep")
    ap.add_argument("--pairs", type=int, default=1024)
    ap.add_argument("--bench-n", type=int, default=256)
    ap.add_argument("--bench-seeds", type=int, default=3)
    ap.add_argument("--work", default="runs/bundle")
    ap.add_argument("--out", default="resources/models")
    ap.add_argument("--tar", help="also pack each PDE's bundle as <dir>/<pde>.tar")
    ap.add_argument("--tune", action="store_true",
                    help="tune the latent solve of the students made here (tune_solve.py) before bundling")
    ap.add_argument("--tune-steps", type=int, default=100, help="latent steps of each tuning solve")
    ap.add_argument("--deadline", type=float, default=0, help="seconds after which optional steps are skipped")
    args = ap.parse_args(argv)
    if args.teacher_from and args.teacher_init:
        ap.error("--teacher-from keeps a teacher, --teacher-init trains one further: choose one")
    base_set = args.teacher_from or args.teacher_init
    if args.student_init and not base_set:
        ap.error("--student-init starts from a bundled set's students: give --teacher-from or --teacher-init SET")
    if args.teacher_cooldown and not args.teacher_steps:
        ap.error("--teacher-cooldown is a fraction of --teacher-steps: give them")
    budgets = args.teacher_minutes * len(args.pdes) if len(args.teacher_minutes) == 1 else args.teacher_minutes
    late = lambda: args.deadline and time.perf_counter() - T0 > args.deadline  # noqa: E731
    summary = {}
    for pde, t_min in zip(args.pdes, budgets):
        work = Path(args.work) / pde
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        ablation = args.distill_minutes if args.ablation_minutes is None else args.ablation_minutes
        students = [("distill", 0.0, 0.5, ablation), ("piddm", args.lam, 0.5, args.distill_minutes)]
        kept: list[str] = []  # models of the reused set that stay as they are
        if args.teacher_from:
            old = reuse_set(args.teacher_from / pde, work)
            carried = carried_guidance(args.teacher_from / pde)
            record = {k: old[k] for k in ("grid", "model_size", "data", "teacher_training")}
            log(f"{pde}: teacher of {args.teacher_from / pde} kept ({old['teacher_training']['steps']} steps)")
            kept = ["teacher"]
            if ablation == 0 and (args.teacher_from / pde / "distill").is_dir():
                shutil.copytree(args.teacher_from / pde / "distill", work / "distill")
                students, kept = students[1:], kept + ["distill"]
        else:
            gen = generate_dataset(pde, args.n_data, args.grid, 0, work / "data.h5")
            log(f"{pde}: {gen.n} samples in {gen.seconds:.1f} s ({gen.samples_per_s:.0f}/s), "
                f"residual {gen.residual_mse:.2e}")
            tcfg = TeacherConfig(pde=pde, grid_n=args.grid, dataset=str(work / "data.h5"), model=args.model,
                                 batch_size=args.teacher_batch or args.batch,
                                 lr=1e-3 if args.device != "cpu" else 5e-4, warmup_steps=100,
                                 steps=args.teacher_steps or 10**9, cooldown=args.teacher_cooldown,
                                 minutes=t_min, ema_halflife_steps=args.teacher_ema, report_every=50,
                                 device=args.device, compile=args.teacher_compile,
                                 init_from=str(args.teacher_init / pde / "teacher") if args.teacher_init else "")
            if args.teacher_curve:
                tres = teacher_curve(tcfg, work, args.teacher_curve, args, Path(args.tar or work))
            else:
                tres = train_teacher(tcfg, work / "teacher")
            log(f"{pde}: teacher {tres.step} steps in {tres.seconds:.0f} s, {tres.samples_per_s:.0f} samples/s, "
                f"loss {tres.loss:.4f}")
            carried = {}
            record = {"data": {"n": gen.n, "seed": 0, "held_out_fraction": tcfg.holdout_fraction,
                               "generator": f"piddm generate --pde {pde} --n {gen.n} --grid {args.grid} --seed 0"},
                      "teacher_training": {"seconds": tres.seconds, "steps": tres.step, "batch": tcfg.batch_size,
                                           "samples_per_s": tres.samples_per_s, "final_loss": tres.loss,
                                           "compiled": args.teacher_compile}}
            if args.teacher_init:
                old = json.loads((args.teacher_init / pde / "teacher" / "card.json").read_text())
                record["teacher_training"] = continued_record(old["teacher_training"], tres, tcfg)
                log(f"{pde}: teacher continued from {old['teacher_training']['steps']} to "
                    f"{record['teacher_training']['steps']} steps")
                carried = carried_guidance(args.teacher_init / pde)  # tuned for the old teacher: tune again
                for name, _, _, minutes in list(students):
                    if minutes == 0 and (args.teacher_init / pde / name).is_dir():
                        shutil.copytree(args.teacher_init / pde / name, work / name)
                        students, kept = [s for s in students if s[0] != name], kept + [name]
        if pde in args.sweep:
            for lam in (0.01, 0.1, 1.0):
                for warm in (0.0, 0.5):
                    if (lam, warm) != (args.lam, 0.5):
                        students.append((f"sweep-lam{lam:g}-warm{warm:g}", lam, warm, args.sweep_minutes))
        results = {}
        for name, lam, warm, minutes in students:
            if name.startswith("sweep") and late():
                log(f"{pde}: deadline passed, skipping {name}")
                continue
            run = work / name
            run.mkdir()
            if (work / "distill" / "pairs.h5").is_file():  # same seed → same pairs: map them once
                shutil.copy(work / "distill" / "pairs.h5", run / "pairs.h5")
            # A student warm-started from one of its own kind ended that run at full λ: no second
            # ramp from 0. One started from the λ = 0 student meets the physics for the first time.
            source = init_source(args, name)
            init_from = str(base_set / pde / source) if source else ""
            dcfg = DistillConfig(teacher=str(work / "teacher"), lam=lam, lam_warmup=0.0 if source == name else warm,
                                 physics_on=args.physics_on, init_from=init_from,
                                 pairs=args.pairs, sampler_steps=args.sampler_steps, refresh=args.refresh,
                                 batch_size=min(args.batch, args.pairs),
                                 lr=args.distill_lr or (2e-4 if args.device != "cpu" else 1e-4),
                                 warmup_steps=20, steps=10**9, minutes=minutes, ema_halflife_steps=args.student_ema,
                                 device=args.device)
            dres = distill(dcfg, run)
            results[name] = dres
            start = f"from {init_from}" if init_from else f"warm-up {warm:g}"
            log(f"{pde}: {name} λ={lam:g} {start}: {dres.step} steps, {dres.seconds:.0f} s "
                f"(pairs {dres.pair_seconds:.0f} s), residual {dres.residual:.3g} vs teacher's {dres.residual_scale:.3g}")
        bench = bench_generate(work, n=args.bench_n, seeds=args.bench_seeds, sampler_steps=args.sampler_steps,
                               device=args.device)
        write_text(work / "bench.json", json.dumps(bench, indent=2))
        log(f"{pde}: bench\n{format_table(bench)}")
        tparams = sum(v.numel() for v in load_checkpoint(work / "teacher")["ema"].values())
        hardware = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
        base_card = {"pde": pde, "grid": args.grid, "model_size": args.model, "parameters": tparams,
                     "software_version": __version__, "hardware": hardware, **record,
                     "bench_generate": bench["table"], "recipe": "packaging/make_models.py", **carried}
        dst = Path(args.out) / pde
        for name in kept:  # unchanged from the reused set
            shutil.copytree(work / name, dst / name, dirs_exist_ok=True)
            kept_card(dst / name, base_card)
        if "teacher" not in kept:
            slim(work / "teacher", dst / "teacher",
                 {**base_card, "kind": "teacher", "name": "teacher", "training": base_card["teacher_training"]})
        for name, r in results.items():
            if name not in BUNDLED:
                continue
            training = {"seconds": r.seconds, "pair_seconds": r.pair_seconds, "steps": r.step,
                        "pairs": args.pairs, "sampler_steps": args.sampler_steps, "residual_scale": r.residual_scale}
            if source := init_source(args, name):
                old = json.loads((base_set / pde / source / "card.json").read_text())
                training = {**training, "started_from": source,
                            "seconds": old["training"]["seconds"] + r.seconds,
                            "steps": old["training"]["steps"] + r.step, "continued_from": old["training"],
                            "continuation": training, "teacher_at_start": old.get("teacher_at_distillation",
                                                                                   old["teacher_training"])}
            slim(work / name, dst / name,
                 {**base_card, "kind": "student", "name": name, "lambda": 0.0 if name == "distill" else args.lam,
                  "physics_on": args.physics_on, "training": training})
        made = [name for name in results if name in BUNDLED]
        if args.tune and made and late():
            log(f"{pde}: deadline passed, {' and '.join(made)} not tuned")
        elif args.tune and made:
            t_tune = time.perf_counter()
            tune_set(dst, made, tasks=["forward", "inverse"], specs=["points:123", "full"], steps=args.tune_steps,
                     device=str(resolve_device(args.device)))
            log(f"{pde}: {' and '.join(made)} tuned in {time.perf_counter() - t_tune:.0f} s")
        if args.tar:
            Path(args.tar).mkdir(parents=True, exist_ok=True)
            with tarfile.open(Path(args.tar) / f"{pde}.tar", "w") as tf:
                tf.add(Path(args.out) / pde, arcname=pde)
                tf.add(work / "bench.json", arcname=f"{pde}/bench.json")
        summary[pde] = {"bench": bench, "teacher_seconds": record["teacher_training"]["seconds"]}
        log(f"{pde}: bundled")
    if args.tar:
        write_text(Path(args.tar) / "summary.json", json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
