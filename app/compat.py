"""Work around a PySide6 6.12 refcount bug on CPython < 3.12.

PySide6/shiboken6 6.12.0 drop one reference to None for every call of a void-returning Qt method
(and one to True per signal emit). On 3.12+ these objects are immortal; on 3.11 the count reaches
zero after some thousands of calls and the interpreter aborts ("deallocating None"). We make the
three singletons effectively immortal, as 3.12 does: a huge extra count that the leak never exhausts.
"""

from __future__ import annotations

import ctypes
import sys

_EXTRA = 1 << 40


def make_singletons_immortal() -> bool:
    """Add 2**40 references to None, True and False (once; CPython < 3.12 only)."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or getattr(sys, "_piddm_immortal", False):
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _EXTRA  # ob_refcnt is the first field
    sys._piddm_immortal = True
    return True
