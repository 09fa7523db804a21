"""Shared pieces of the sub-commands: progress bars, JSON output, common options."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from engine.config import UNLIMITED_STEPS
from engine.errors import ConfigError
from engine.io.atomic import existing_folder
from engine.jobs import Progress, ProgressFn

SEED_LIMIT = 2**32  # seeds feed NumPy and torch generators, which take 32 (NumPy) or 64 bits


def seed_value(text: str) -> int:
    """An argparse type: a seed in [0, 2^32). Larger ones overflowed torch's generator (a traceback)
    or were taken modulo 2^32 by NumPy (another seed's results, silently)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: a whole number") from None
    if not 0 <= seed < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seed {seed} out of range: 0 … {SEED_LIMIT - 1}")
    return seed


def setting_flags(p: argparse.ArgumentParser, option_fields: dict[str, str] | None = None) -> dict[str, str]:
    """Config field -> the flag of ``p`` that sets it (``option_fields``: option dest -> field, where
    they differ), for ``in_flags``. Call it after the last ``add_argument``."""
    fields = option_fields or {}
    return {fields.get(a.dest, a.dest): max(a.option_strings, key=len) for a in p._actions if a.option_strings}


def in_flags(exc: Exception, flags: dict[str, str]) -> str:
    """The message of ``exc``, naming the flag instead of the config field it is about: the engine's
    configs speak of ``batch_size`` and ``lam``, the command line of ``--batch`` and ``--lambda``."""
    text, setting = str(exc), getattr(exc, "setting", None)
    if setting in flags and text.startswith(setting):
        return flags[setting] + text[len(setting):]
    return text


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=seed_value, default=0, help="random seed, 0 … 2^32 − 1 (default 0)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")


STEP_LOG_SECONDS = 60.0  # in a log file, a progress line after this long without one


TIMED_BAR = "{l_bar}{bar}| {n:.2f}/{total:g} min{postfix}"  # the bar of a run limited by minutes alone


def progress_bar(desc: str, enabled: bool = True, minutes: float = 0.0) -> tuple[ProgressFn, Any]:
    """A tqdm bar on stderr fed by Progress reports.

    A bench reports each method done ("bench") and, in between, the steps of the method running
    ("bench-step"), which a terminal shows after the bar. When stderr is not a terminal (a log file)
    the bar is hidden and plain lines are written instead: one per bench method done, and for any
    command a step line whenever ``STEP_LOG_SECONDS`` passed without a line, so that the log of a
    20-minute 2000-step solve or an hour of training still shows where it is.

    minutes: the time budget of a training run (0: none). A run limited by minutes alone reports
    ``UNLIMITED_STEPS`` as its total, a sentinel for "no step limit" that is no count to show: its
    bar fills with the run's minutes (the reports' "elapsed", over all sessions, as the budget counts
    them) and names the step, and its log line reads "teacher: step 20, 0.10/0.3 min, loss …".
    """
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=None, disable=None if enabled else True, file=sys.stderr,
               dynamic_ncols=True, leave=False)
    last_line = [time.monotonic()]

    def log_line(text: str) -> None:
        print(f"{desc}: {text}", file=sys.stderr, flush=True)
        last_line[0] = time.monotonic()

    def on_progress(p: Progress) -> None:
        timed = minutes > 0 and p.total >= UNLIMITED_STEPS
        spent = p.metrics.get("elapsed")  # seconds
        used = f"{'?' if spent is None else f'{spent / 60:.2f}'}/{minutes:g} min"
        if bar.disable:
            if not enabled:
                return
            if p.stage == "bench":
                shown = ", ".join(f"{k} {v:.3g}" for k, v in p.metrics.items())
                log_line(f"{p.step}/{p.total} {p.message}" + (f": {shown}" if shown else ""))
            elif time.monotonic() - last_line[0] >= STEP_LOG_SECONDS:
                metrics = [(k, v) for k, v in p.metrics.items() if not (timed and k == "elapsed")]  # as on the bar
                shown = "".join(f", {k} {v:.3g}" for k, v in metrics[:3])
                what = p.message if p.stage == "bench-step" else p.stage
                count = f"step {p.step}, {used}" if timed else f"step {p.step}/{p.total}"
                log_line(f"{what}: {count}" + ("" if p.stage == "bench-step" else shown))
            return
        if p.stage == "bench-step":
            bar.set_postfix_str(f"{p.message}: step {p.step}/{p.total}")
            return
        if timed:
            bar.bar_format = TIMED_BAR  # before reset, which draws the bar
            if bar.total != minutes:
                bar.reset(total=minutes)
            if spent is not None:
                bar.n = min(spent / 60, minutes)  # the run ends at its first step past the budget: no 101 %
            rest = [(k, v) for k, v in p.metrics.items() if k != "elapsed"][:4]  # the bar is the elapsed time
            bar.set_postfix({"step": p.step, **{k: f"{v:.3g}" for k, v in rest}}, refresh=False)
        else:
            bar.bar_format = None
            if bar.total != p.total:
                bar.reset(total=p.total)
            bar.n = p.step
            if p.metrics:
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(p.metrics.items())[:4]}, refresh=False)
        bar.refresh()

    return on_progress, bar


def show_phase(bar: Any, text: str) -> None:
    """Name the work a command does once its bar is full (the answer's residual, writing the file) as
    the bar's postfix, where the bar would sit full with nothing said. Nothing in a log: these phases
    take seconds, and a log gets a line a minute at most (``progress_bar``)."""
    if not bar.disable:
        bar.set_postfix_str(text)


def then_phase(on_progress: ProgressFn, bar: Any, text: str) -> ProgressFn:
    """``on_progress``, then ``show_phase(bar, text)`` once a report says the last step is done: what
    the engine function does after its loop (assembling, writing) is named on the bar."""

    def report(p: Progress) -> None:
        on_progress(p)
        if p.total and p.step >= p.total:
            show_phase(bar, text)

    return report


INPUT_OPTIONS = ("obs", "data", "model", "models", "teacher", "reference", "truth", "file")  # what commands read


def check_output_file(path: str | None, inputs: list[str] | tuple[str, ...] = (), example: str = "out.h5",
                      flag: str = "-o") -> None:
    """Refuse an output file that cannot be written before the work that fills it (minutes, maybe),
    and one that would overwrite what the command reads: an input file, or a file of an input folder
    (a model's checkpoint.pt). A new file inside a model's folder is allowed. ``example``: a file name
    the message suggests when ``path`` is a folder; ``flag``: the option that names ``path``."""
    if path is None:
        return
    p = Path(path)
    existing_folder(p)
    if p.is_dir():
        raise ConfigError(f"cannot write {p}: it is a folder (give a file name, e.g. {p / example})")
    if not p.exists():
        return
    for given in inputs:
        src = Path(given)
        if src.is_file() and os.path.samefile(src, p):
            raise ConfigError(f"{flag} {path} is the input {given}: write the output to another file")
        if src.is_dir() and p.resolve().is_relative_to(src.resolve()):
            raise ConfigError(f"{flag} {path} would overwrite a file of {given}: write the output elsewhere")


def inputs_of(args: argparse.Namespace) -> list[str]:
    """The files and folders a parsed command reads (``INPUT_OPTIONS`` it has), for ``check_output_file``."""
    out = []
    for name in INPUT_OPTIONS:
        value = getattr(args, name, None)
        out += [str(v) for v in (value if isinstance(value, list) else [value]) if v]
    return out


def json_text(result: Any) -> str:
    """``result`` as standard JSON: a NaN or infinite number (a figure that does not exist, such as
    the std of one seed's rows) becomes null, which every JSON parser reads; Python's NaN does not."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(result), indent=2, default=str, allow_nan=False)


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print ``result`` as JSON with --json, else the human line ``text``."""
    if as_json:
        print(json_text(result))
    else:
        print(text)
