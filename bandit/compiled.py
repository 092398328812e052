"""How SendLab compiles its numerical kernels: numba, cached on disk where a place can be written.

:func:`compiled` is ``numba.njit`` with ``error_model="numpy"`` (a division by zero gives inf or NaN,
as in numpy, instead of raising: the check it saves is what keeps loops of divisions off vector
registers) and ``cache=True``. numba keeps the cache next to the source (``__pycache__``), else under
the user's cache directory (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``), or where
``NUMBA_CACHE_DIR`` says. Where none of them can be written numba refuses ``cache=True`` outright;
the kernel is then compiled without a cache, in every process that uses it. numba keys a cached
function on the content of its own file only, not on the files of the compiled functions it calls and
inlines: compiled functions that call each other belong in one module.

Only the modules that hold kernels import this one, and only when a kernel is first needed, so
importing :mod:`bandit` does not load numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit

_OPTIONS = {"error_model": "numpy"}


def compiled(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``numba.njit(cache=True, error_model="numpy", **options)``, without the cache where numba has no
    place to write it; as ``@compiled`` or ``@compiled(inline="always")``."""
    def compile_(python: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, **_OPTIONS, **options)(python)
        except RuntimeError as error:  # numba's words when no cache directory can be written
            if "no locator available" not in str(error):
                raise
            return njit(**_OPTIONS, **options)(python)

    return compile_ if function is None else compile_(function)
