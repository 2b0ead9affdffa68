"""The harness needs the project's venv (hiredis, uvloop): the entry scripts (run.py,
chaos.py) call :func:`ensure_venv` first, which re-runs them under it if need be.
Imports nothing that needs the venv."""

from __future__ import annotations

import os
import sys


def ensure_venv() -> None:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        venv = os.path.join(root, ".venv")
        if os.path.exists(venv) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
            os.execv(os.path.join(venv, "bin", "python"),
                     [os.path.join(venv, "bin", "python"), *sys.argv])
        raise
