"""Entry point of ``piddm``: parse, dispatch, and turn engine and OS errors into one line + exit 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from engine import __version__
from engine.cli.common import check_output_file, in_flags, inputs_of
from engine.errors import EngineError
from engine.jobs import Cancelled

# Sub-command modules, each with register(subparsers). Listed, not discovered: grep finds them.
FILE_OUTPUT = ("generate", "sample", "observe", "solve", "bench")  # their -o is a file (train's and distill's a folder)
COMMAND_MODULES = ("engine.cli.data_cmds", "engine.cli.train_cmds", "engine.cli.distill_cmds", "engine.cli.observe_cmds",
                   "engine.cli.solve_cmds", "engine.cli.bench_cmds")


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="piddm", description="PIDDM Studio command line")
    parser.add_argument("--version", action="version", version=f"piddm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def out_of_memory(exc: BaseException) -> str | None:
    """One line for running out of GPU or CPU memory (torch's messages run to paragraphs), else None."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        where = "GPU"
    elif isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        where = "CPU"
    else:
        return None
    return (f"out of {where} memory; a smaller --batch, --ensemble or -n needs less "
            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:120] if str(exc).strip() else 'no details'})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        if args.command in FILE_OUTPUT:
            check_output_file(args.output, inputs_of(args), example="out.json" if args.command == "bench" else "out.h5")
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"piddm: error: {in_flags(exc, getattr(args, 'setting_flags', {}))}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if (text := out_of_memory(exc)) is None:
            raise
        print(f"piddm: error: {text}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `piddm … --json | head -1`: the reader has gone; nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except OSError as exc:  # the machine's, not the input's: a full disk, a folder without permission
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"piddm: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("piddm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
