"""The compiled engine (``MAILSIM_COMPILE=1``, setup.py) shows exactly what the pure one shows.

``make compiled`` builds the package's wheel with the hot modules compiled by mypyc and
unpacks it in ``.build/compiled``; ``make bench`` measures that build. Here it runs in a
child process (``-P``, so the checkout's own ``simulator/`` cannot shadow it) over the
whole golden corpus (every shipped scenario, the test data, the chaos corpus) and a
varied workload, and every trace, ``--json`` result, mailbox and explanation must be
byte-identical to the pure Python's. The child first proves that each module setup.py
lists was loaded as a C extension: otherwise this would compare the pure engine with itself.

Then the behaviour suites (:data:`SUITES`: the engine, the stepper and player, explain, replay,
the domain rules, chaos, sweeps, every scenario, the DNS zone and resolvers, SPF, the loader) run again in a pytest
of their own against the compiled build: compiled classes differ from Python ones in ways no output
digest shows (a class constant not marked ``ClassVar`` became an instance attribute there, and an
``except`` name reused for a second exception type refused it, both found this way).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import hot_modules, need_tool

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("golden", ROOT / "tools" / "golden.py")
assert spec is not None and spec.loader is not None
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)

pytestmark = pytest.mark.requires_tool("mailsim-compiled")

VARIED_SIZE = 10_000

# test files whose tests hold only behaviour (tests that look at a class's __slots__ or hand a rule a
# wrongly typed stand-in, which compiled code refuses, stay with the pure engine)
SUITES = ["test_engine.py", "test_session.py", "test_stepper.py", "test_scenarios.py", "test_explain.py",
          "test_replay.py", "test_world.py", "test_domain.py", "test_domain_rules.py", "test_chaos.py",
          "test_engine_mut.py", "test_receiver_mut.py", "test_run_maildir.py", "test_timeline.py", "test_sweep.py",
          "test_zone.py", "test_domain_dns.py", "test_dns_server.py", "test_dns_canonical.py",
          "test_spf.py", "test_spf_limits.py", "test_spf_wire.py"]
# the loader's, in an inner run of their own (each run stays well inside the per-test timeout)
LOADER_SUITES = ["test_loader.py", "test_loader_quick.py", "test_loader_limits.py", "test_loader_properties.py",
                 "test_loader_fuzz.py", "test_flowrows.py", "test_yamltree_compose.py", "test_schema.py",
                 "test_times.py"]

# loaded by the inner pytest (-p): fails its session unless the engine it imports is the compiled one
PROBE = """
import pytest

def pytest_sessionstart(session):
    import simulator.engine.mta as mta
    import simulator.scenario.flowrows as flowrows
    for mod in (mta, flowrows):
        if not mod.__file__.endswith((".so", ".pyd")):
            raise pytest.UsageError(f"the inner run imported {mod.__file__}, not the compiled build")
"""

# run in the child: which module files were loaded, the corpus digests, and a varied run's digests
CHILD = """
import importlib, importlib.util, json, sys
from pathlib import Path
root, varied = Path(sys.argv[1]), sys.argv[2]
mods = json.loads(sys.argv[3])
files = {m: importlib.import_module(m).__file__ for m in mods}
spec = importlib.util.spec_from_file_location("golden", root / "tools" / "golden.py")
golden = importlib.util.module_from_spec(spec)
spec.loader.exec_module(golden)
import simulator
_result, digests = golden.run_digests(simulator, varied, Path(varied).with_suffix(".jsonl"))
print(json.dumps({"files": files, "corpus": golden.digests(root), "varied": digests}))
"""


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    build = need_tool("mailsim-compiled")
    from benchmarks.varied import scenario_text

    tmp = tmp_path_factory.mktemp("compiled")
    varied = tmp / "varied.yaml"
    varied.write_text(scenario_text(VARIED_SIZE))
    env = {**os.environ, "PYTHONPATH": build}
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD, str(ROOT), str(varied), json.dumps(hot_modules())],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, object] = json.loads(proc.stdout)
    out["varied_path"] = str(varied)
    return out


def test_setup_lists_modules_that_exist() -> None:
    mods = hot_modules()
    assert len(mods) >= 5
    for m in mods:
        assert (ROOT / (m.replace(".", "/") + ".py")).is_file(), m


def test_every_hot_module_is_a_c_extension_in_the_build(compiled_run: dict[str, object]) -> None:
    files = compiled_run["files"]
    assert isinstance(files, dict) and set(files) == set(hot_modules())
    build = str(Path(need_tool("mailsim-compiled")).resolve())
    for mod, path in files.items():
        assert path.endswith(".so") or path.endswith(".pyd"), f"{mod} was loaded from {path}, not compiled"
        assert str(Path(path).resolve()).startswith(build), f"{mod} came from {path}, outside the build"


def test_corpus_outputs_are_byte_identical_to_the_pure_engine(compiled_run: dict[str, object]) -> None:
    recorded = json.loads(golden.GOLDEN.read_text())  # what the pure engine shows (tests/test_golden.py)
    compiled = compiled_run["corpus"]
    assert isinstance(compiled, dict) and set(compiled) == set(recorded)
    assert golden.diff(recorded, compiled) == []


def test_varied_run_is_byte_identical_to_the_pure_engine(compiled_run: dict[str, object],
                                                          tmp_path: Path) -> None:
    """Emails that differ: per-message draws, quota runs, greylisting, bounces — the paths the corpus is small on."""
    import simulator

    varied = Path(str(compiled_run["varied_path"]))
    _result, pure = golden.run_digests(simulator, str(varied), tmp_path / "trace.jsonl")
    assert compiled_run["varied"] == pure


@pytest.mark.timeout(900)  # a hang guard for a whole inner pytest run, not a bound on its speed
@pytest.mark.parametrize("suites", [SUITES, LOADER_SUITES], ids=["engine", "loader"])
def test_behaviour_suites_pass_against_the_compiled_build(suites: list[str], tmp_path: Path) -> None:
    build = need_tool("mailsim-compiled")
    (tmp_path / "compiled_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([build, str(tmp_path), str(ROOT)])}
    files = [str(ROOT / "tests" / f) for f in suites]
    proc = subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "compiled_probe",
                           *files], cwd=ROOT, env=env, capture_output=True, text=True, timeout=850, check=False)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-2000:])
    assert " passed" in proc.stdout.splitlines()[-1]


def test_version_names_the_build() -> None:
    """``mailsim --version`` says "(compiled engine)" exactly when the compiled build runs."""
    build = need_tool("mailsim-compiled")
    cmd = [sys.executable, "-P", "-c", "from simulator.cli.main import main; main()", "--version"]
    pure = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    fast = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": build})
    assert pure.returncode == 0 and fast.returncode == 0, (pure.stderr, fast.stderr)
    assert pure.stdout.startswith("mailsim ") and "compiled" not in pure.stdout
    assert fast.stdout == pure.stdout.rstrip("\n") + " (compiled engine)\n"
