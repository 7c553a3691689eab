"""The optional compiled engine: ``MAILSIM_COMPILE=1`` builds the hot modules with mypyc.

Everything else about the package is in ``pyproject.toml``. Without the variable (the
default, and always for ``pip install -e``) the package is pure Python. With it, the
modules every email of a run passes through are compiled to C extensions by mypyc
(mypy's compiler, as black and mypy itself ship): the same source, the same results
byte for byte (``tests/test_compiled.py``), about 1.8× faster to simulate. mypyc then
must be importable in the build environment, so build without isolation from an
environment that has ``mypy`` (``make compiled`` does; docs/performance.md).
"""

from __future__ import annotations

import os

from setuptools import setup

# The per-email path of a run, and nothing that imports these back at module level (mypyc compiles a
# group of modules together; an import cycle inside the group crashed at import). Tests hold the
# compiled build to the pure one on every scenario; keep this list and tests/test_compiled.py in step.
HOT_MODULES = [
    "simulator/domain/entities.py",
    "simulator/domain/faults.py",
    "simulator/domain/recipients.py",
    "simulator/domain/sender.py",
    "simulator/domain/sync.py",
    "simulator/domain/world.py",
    "simulator/engine/emails.py",
    "simulator/engine/mta.py",
    "simulator/engine/sim.py",
    "simulator/engine/state.py",
    "simulator/net/dnsview.py",
    "simulator/net/receiver.py",
    "simulator/transport/base.py",
    "simulator/transport/memory.py",
]


def _ext_modules() -> list[object]:
    if os.environ.get("MAILSIM_COMPILE", "") != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(HOT_MODULES, opt_level="3"))


setup(ext_modules=_ext_modules())
