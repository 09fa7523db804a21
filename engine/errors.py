"""Errors the engine raises on bad input. Each message is one line naming the bad value."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: any user-facing engine failure (bad input, bad file, bad config)."""


class ConfigError(EngineError, ValueError):
    """A setting is out of range, unknown, or inconsistent with another.

    ``setting``: the config field at fault, when the message starts with its name, so that the
    command line can say the flag that sets it instead (``--batch``, not ``batch_size``).
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class DatasetError(EngineError):
    """A fields file is missing, malformed, or does not match what was asked for."""


class CheckpointError(EngineError):
    """A checkpoint or run directory cannot be loaded, or belongs to another PDE/grid/kind."""


class NonFiniteError(EngineError):
    """A loss or field became NaN/inf; the job stops rather than training on it."""
