"""Lazy imports of optional dependencies, with an error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from sparktrain.errors import MissingExtraError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or explain which sparktrain extra installs it.

    Parameters
    ----------
    module : str
        Dotted module name, for example ``"lightgbm"``.
    extra : str
        The sparktrain extra that brings it, for example ``"automl"``.
    purpose : str
        What the caller needs it for, shown in the error.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the Python package {module!r}, which is not "
            f"installed; install it with: pip install 'sparktrain[{extra}]'"
        ) from exc
