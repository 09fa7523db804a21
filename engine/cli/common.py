"""Shared pieces of the sub-commands: progress bars, JSON output, common options."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.jobs import Progress, ProgressFn


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")


def progress_bar(desc: str, enabled: bool = True) -> tuple[ProgressFn, Any]:
    """A tqdm bar on stderr fed by Progress reports. When stderr is not a terminal (a log file) the bar
    is hidden and a bench's reports, one per method done, are written there as plain lines instead,
    so that a run of many minutes redirected to a file still shows where it is."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=None, disable=None if enabled else True, file=sys.stderr,
               dynamic_ncols=True, leave=False)

    def on_progress(p: Progress) -> None:
        if bar.disable:
            if enabled and p.stage == "bench":
                shown = ", ".join(f"{k} {v:.3g}" for k, v in p.metrics.items())
                print(f"{desc}: {p.step}/{p.total} {p.message}" + (f": {shown}" if shown else ""),
                      file=sys.stderr, flush=True)
            return
        if bar.total != p.total:
            bar.reset(total=p.total)
        bar.n = p.step
        if p.metrics:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(p.metrics.items())[:4]}, refresh=False)
        bar.refresh()

    return on_progress, bar


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print ``result`` as JSON with --json, else the human line ``text``."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(text)
