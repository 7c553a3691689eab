"""The package's PEP 517 build backend: setuptools', asking for mypy when the compiled engine is wanted.

``MAILSIM_COMPILE=1 pip install .`` builds the hot modules with mypyc (setup.py); pip's isolated
build environment then needs mypy (mypyc ships inside it), so a wheel build asks for it here. A
pure build and an editable install (never compiled, see setup.py) ask for nothing more than
setuptools does.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every hook setuptools offers, unchanged)


def _compile() -> list[str]:
    return ["mypy>=1.10"] if os.environ.get("MAILSIM_COMPILE", "") == "1" else []


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_wheel(config_settings), *_compile()]
