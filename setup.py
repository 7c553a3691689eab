"""The optional compiled engine: ``MAILSIM_COMPILE=1`` builds the hot modules with mypyc.

Everything else about the package is in ``pyproject.toml``. Without the variable (the
default, and always for ``pip install -e``) the package is pure Python. With it, the
modules every email of a run passes through are compiled to C extensions by mypyc
(mypy's compiler, as black and mypy itself ship): the same source, the same results
byte for byte (``tests/test_compiled.py``), ≈1.8× faster to simulate (docs/performance.md). The build backend
(tools/build_backend.py) asks pip for mypy then; ``make compiled`` builds without isolation
from the dev venv, which has it (docs/performance.md).
"""

from __future__ import annotations

import os
import sys

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
    "simulator/domain/dns.py",
    "simulator/engine/emails.py",
    "simulator/engine/mta.py",
    "simulator/engine/sim.py",
    "simulator/engine/state.py",
    "simulator/net/dnsview.py",
    "simulator/scenario/convert.py",
    "simulator/scenario/fields.py",
    "simulator/scenario/flowrows.py",
    "simulator/scenario/kinds.py",
    "simulator/scenario/yamltree.py",
    "simulator/scenario/sections/organization.py",
    "simulator/scenario/sections/batches.py",
    "simulator/net/resolver.py",
    "simulator/net/spf.py",
    "simulator/net/spf_macro.py",
    "simulator/net/spf_record.py",
    "simulator/net/zone.py",
    "simulator/net/receiver.py",
    "simulator/transport/base.py",
    "simulator/transport/draws.py",
    "simulator/transport/memory.py",
]


def _ext_modules() -> list[object]:
    # never for an editable install: its extensions would sit beside the sources and shadow every edit
    if os.environ.get("MAILSIM_COMPILE", "") != "1" or "editable_wheel" in sys.argv:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        if {"egg_info", "dist_info"} & set(sys.argv):  # pip asking what the build needs: mypy, before it is there
            return []
        raise SystemExit("MAILSIM_COMPILE=1 needs mypy (mypyc) where the package is built: pip install mypy, "
                         "or let pip build in isolation (tools/build_backend.py asks for it)") from None
    return list(mypycify(HOT_MODULES, opt_level="3"))


setup(ext_modules=_ext_modules())
