"""The installable package: bundled examples, bare example names, --version, extras, and the CLI's help.

The last test builds the wheel, installs it into a fresh virtualenv outside the checkout and runs the
commands from a folder that holds no project file: what `pip install .` / `pipx install .` give a user.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
MAILSIM = [sys.executable, "-m", "simulator.cli.main"]
# the sub-commands whose module exists in this checkout (schema is added by another change)
COMMANDS = ["run", "validate", "explain", "step", "timeline", "replay", "diff", "sweep", "chaos", "sink",
            "examples", "spf", "dns", *(["schema"] if (ROOT / "simulator/cli/schema_cmd.py").exists() else [])]


def mailsim(*args: str, cwd: Path = ROOT, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess (its exit code is the contract); ``prelude`` runs before it (e.g. hide a module)."""
    code = f"{prelude}\nimport sys\nfrom simulator.cli.main import main\nsys.argv[0] = 'mailsim'\nmain()"
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def test_version_is_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert metadata.version("mailsim") == version
    r = mailsim("--version")
    assert (r.returncode, r.stdout) == (0, f"mailsim {version}\n")


def test_examples_lists_every_scenario(tmp_path: Path) -> None:
    r = mailsim("examples", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines()[: len(SCENARIOS)]]
    assert listed == SCENARIOS
    assert f"{len(SCENARIOS)} examples." in r.stdout


def test_examples_copy_writes_them_out_and_keeps_existing_files(tmp_path: Path) -> None:
    dest = tmp_path / "mine" / "examples"
    r = mailsim("examples", "copy", str(dest), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.stem for p in dest.iterdir()) == SCENARIOS
    for name in SCENARIOS:
        assert (dest / f"{name}.yaml").read_bytes() == (ROOT / "scenarios" / f"{name}.yaml").read_bytes()
    (dest / "tour.yaml").write_text("edited")
    r = mailsim("examples", "copy", str(dest), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "--force" in r.stderr
    assert (dest / "tour.yaml").read_text() == "edited"
    assert mailsim("examples", "copy", str(dest), "--force", cwd=tmp_path).returncode == 0
    assert (dest / "tour.yaml").read_bytes() == (ROOT / "scenarios/tour.yaml").read_bytes()


def test_a_bare_example_name_works_wherever_a_file_does(tmp_path: Path) -> None:
    by_name = mailsim("run", "tour", "--json", cwd=tmp_path)
    by_path = mailsim("run", str(ROOT / "scenarios/tour.yaml"), "--json", cwd=tmp_path)
    assert by_name.returncode == by_path.returncode == 0
    assert by_name.stdout == by_path.stdout
    assert mailsim("validate", "tour", "step3-token-expired.yaml", cwd=tmp_path).returncode == 0
    r = mailsim("explain", "step3-token-expired", "--invoice", "INV-3101", cwd=tmp_path)
    assert r.returncode == 0 and "sync-token-expired" in r.stdout
    # a file of that name in the current folder wins over the example
    (tmp_path / "tour").write_text("schema: mailsim/1\nname: [\n")
    r = mailsim("validate", "tour", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: tour:")


def test_an_unknown_bare_name_suggests_the_example_it_resembles(tmp_path: Path) -> None:
    r = mailsim("run", "tuor", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == ("error: tuor: no such file, and no bundled example of that name; did you mean 'tour'?"
                        " (`mailsim examples` lists them)\n")


def test_a_missing_extra_is_named(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['matplotlib'] = None"
    r = mailsim("timeline", "tour", "--png", str(tmp_path / "t.png"), cwd=tmp_path, prelude=hide)
    assert (r.returncode, r.stderr) == (2, "error: --png needs matplotlib, which is not installed:"
                                           " pip install 'mailsim[png]'\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_flags_as_flags_and_one_argument_convention(command: str) -> None:
    r = mailsim(command, "--help")
    assert r.returncode == 0, r.stderr
    usage = next(line for line in r.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage  # typer's braces: FILE, not {file}
    assert not re.search(r"\b[a-z]+\b(?=\s*$|\.\.\.)", usage.split("[OPTIONS]")[-1]), usage  # no lower-case args
    has_subcommands = command in ("examples", "spf", "dns")
    assert ("COMMAND [ARGS]..." in usage) == has_subcommands, usage
    assert "<bool>" not in r.stdout
    assert "--help" in r.stdout


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args, text in ((["run"], "Missing argument 'FILE'"), (["run", "tour", "--json", "true"], "unexpected extra"),
                       (["run", "tour", "--bogus"], "No such option: --bogus")):
        r = mailsim(*args, cwd=tmp_path)
        assert r.returncode == 2
        assert r.stderr.startswith("error: mailsim run: ") and text in r.stderr
        assert r.stderr.count("\n") == 1


def test_the_wheel_carries_the_examples_and_the_assets(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"simulator/examples/{n}.yaml" for n in SCENARIOS} <= names
    assert "simulator/py.typed" in names
    for asset in [*ROOT.glob("simulator/**/*.js"), *ROOT.glob("simulator/**/*.css")]:
        assert str(asset.relative_to(ROOT)) in names
    core = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in _requires(wheel) if "extra ==" not in r}
    assert not core & {"matplotlib", "dask", "distributed", "nbclient", "ipykernel"}, core


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def build_wheel(out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = out.glob("mailsim-*.whl")
    return wheel


@pytest.mark.timeout(900)
def test_installed_wheel_works_outside_the_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0 and re.search(r"NewConnectionError|Could not find a version|No matching distribution",
                                       r.stderr):
        pytest.skip(f"the package's dependencies cannot be fetched here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    exe = str(env_dir / "bin" / "mailsim")
    clean = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "100"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], cwd=work, capture_output=True, text=True, timeout=300, env=clean)

    assert run("--version").stdout == f"mailsim {metadata.version('mailsim')}\n"
    r = run("examples")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[0] == SCENARIOS[0]
    r = run("run", "tour", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout == mailsim("run", "tour", "--json", cwd=work).stdout
    r = run("timeline", "tour", "--html", "tour.html")
    assert r.returncode == 0, r.stderr
    page = (work / "tour.html").read_text()
    assert "<script" in page and "INV-1004" in page and "data-rendered" in page
    if "schema" in COMMANDS:
        r = run("schema")
        assert r.returncode == 0 and '"$schema"' in r.stdout
    # the core install has no matplotlib: the command says which extra to install
    r = run("timeline", "tour", "--png", "tour.png")
    assert (r.returncode, r.stderr) == (2, "error: --png needs matplotlib, which is not installed:"
                                           " pip install 'mailsim[png]'\n")
    r = run("sweep", "tour", "--vary", "settings.queue_poll=1m,5m", "--seeds", "1", "--dask", "local",
            "--out", "rows.csv")
    assert r.returncode == 2
    assert r.stderr.endswith("error: --dask needs distributed, which is not installed: pip install 'mailsim[dask]'\n")
    r = run("examples", "copy", "mine")
    assert r.returncode == 0 and sorted(p.stem for p in (work / "mine").iterdir()) == SCENARIOS
    assert {"mine", "tour.html"} <= {p.name for p in work.iterdir()} <= {"mine", "tour.html", "rows.csv"}


@pytest.mark.timeout(1200)
def test_compiled_wheel_builds_in_pips_isolation_and_says_so(tmp_path: Path) -> None:
    """README: ``MAILSIM_COMPILE=1 pip install .`` — pip's isolated build (tools/build_backend.py asks for mypy
    and the dependencies) gives a wheel whose hot modules are C extensions and whose ``--version`` says so."""
    from helpers import hot_modules, missing

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                        str(ROOT)], env={**os.environ, "MAILSIM_COMPILE": "1"}, capture_output=True, text=True,
                       timeout=1100)
    if r.returncode != 0 and re.search(r"NewConnectionError|Could not find a version|No matching distribution",
                                       r.stderr):
        missing(f"the build's requirements cannot be fetched here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("mailsim-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for mod in hot_modules():
        stem = mod.replace(".", "/")
        assert any(n.startswith(stem + ".") and n.endswith((".so", ".pyd")) for n in names), f"{mod} not compiled"
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    v = subprocess.run([sys.executable, "-P", "-c", "from simulator.cli.main import main; main()", "--version"],
                       env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert v.returncode == 0 and v.stdout.endswith(" (compiled engine)\n"), (v.stdout, v.stderr)
