"""Shared pieces of the sub-commands: progress bars, JSON output, common options."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.io.atomic import existing_folder
from engine.jobs import Progress, ProgressFn


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")


STEP_LOG_SECONDS = 60.0  # in a log file, a progress line after this long without one


def progress_bar(desc: str, enabled: bool = True) -> tuple[ProgressFn, Any]:
    """A tqdm bar on stderr fed by Progress reports.

    A bench reports each method done ("bench") and, in between, the steps of the method running
    ("bench-step"), which a terminal shows after the bar. When stderr is not a terminal (a log file)
    the bar is hidden and plain lines are written instead: one per bench method done, and for any
    command a step line whenever ``STEP_LOG_SECONDS`` passed without a line, so that the log of a
    20-minute 2000-step solve or an hour of training still shows where it is.
    """
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=None, disable=None if enabled else True, file=sys.stderr,
               dynamic_ncols=True, leave=False)
    last_line = [time.monotonic()]

    def log_line(text: str) -> None:
        print(f"{desc}: {text}", file=sys.stderr, flush=True)
        last_line[0] = time.monotonic()

    def on_progress(p: Progress) -> None:
        if bar.disable:
            if not enabled:
                return
            if p.stage == "bench":
                shown = ", ".join(f"{k} {v:.3g}" for k, v in p.metrics.items())
                log_line(f"{p.step}/{p.total} {p.message}" + (f": {shown}" if shown else ""))
            elif time.monotonic() - last_line[0] >= STEP_LOG_SECONDS:
                shown = "".join(f", {k} {v:.3g}" for k, v in list(p.metrics.items())[:3])
                what = p.message if p.stage == "bench-step" else p.stage
                log_line(f"{what}: step {p.step}/{p.total}" + ("" if p.stage == "bench-step" else shown))
            return
        if p.stage == "bench-step":
            bar.set_postfix_str(f"{p.message}: step {p.step}/{p.total}")
            return
        if bar.total != p.total:
            bar.reset(total=p.total)
        bar.n = p.step
        if p.metrics:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(p.metrics.items())[:4]}, refresh=False)
        bar.refresh()

    return on_progress, bar


def check_output_file(path: str | None) -> None:
    """Refuse an output file that cannot be written before the work that fills it (minutes, maybe)."""
    if path is None:
        return
    p = Path(path)
    existing_folder(p)
    if p.is_dir():
        raise ConfigError(f"cannot write {p}: it is a folder (give a file name, e.g. {p / 'out.h5'})")


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
