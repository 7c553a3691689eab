"""The package's PEP 517 build backend: setuptools', asking for mypy when the compiled engine is wanted.

``MAILSIM_COMPILE=1 pip install .`` builds the hot modules with mypyc (setup.py). mypyc type-checks
the package first, so pip's isolated build environment then needs mypy (mypyc ships inside it) and
the package's own dependencies: without them their types are unknown there, the checker's verdicts
differ from the dev environment's (an "unused type: ignore" is an error under this project's mypy
settings) and the compiled code would not be the code the tests held to the pure engine. A pure
build and an editable install (never compiled, see setup.py) ask for nothing more than setuptools does.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every hook setuptools offers, unchanged)


def _compile() -> list[str]:
    if os.environ.get("MAILSIM_COMPILE", "") != "1":
        return []
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    return ["mypy>=1.10", *project["dependencies"]]


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_wheel(config_settings), *_compile()]
