"""The public RFC 7208 conformance suite (openspf.org, release 2014.04) through ``mailsim spf check``.

The suite ships in pyspf's source distribution (``test/rfc7208-tests.yml``); it is
fetched once with pip into a cache (``$MAILSIM_CACHE`` or ``~/.cache/mailsim``),
checked against a pinned SHA-256, and skipped with a message only when it cannot
be fetched (a failure under ``CI=true``, where PyPI is reachable).

Each of its scenarios' ``zonedata`` is written as a ``mailsim/1`` file — record
names and values with zone-file escapes, timeouts as ``unreachable`` rules —
loaded by the project's loader, and every case is evaluated by the code behind
``mailsim spf check``: in memory, and over the wire through the loopback DNS
server. All 203 cases must give the suite's result (and its explanation, where
it names one) both ways, and the two ways must agree exactly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import CI
from typer.testing import CliRunner

from simulator.cli.spf_cmd import app as spf_app
from simulator.cli.spf_cmd import evaluate
from simulator.domain.dns import DNS_RECORD_TYPES, bytes_to_text, labels_to_name
from simulator.net.spf import SpfResult
from simulator.net.zone import Zone
from simulator.scenario.loader import load_scenario

PYSPF = "pyspf==2.0.14"
SDIST_SHA256 = "57a7ef01bda090173aafb6af0106251686ed73f03db4e911fcd34c57fc347186"
MEMBER = "pyspf-2.0.14/test/rfc7208-tests.yml"
SUITE_SHA256 = "901f561a6e2b1c1590a40a61b1ac7601226fd7045a7aae591a4d25421358d6f9"
CASE_COUNT = 203
# Only results are checked over the wire, so the deadline is generous (a loaded machine
# must not turn a slow loopback reply into temperror); the cases run concurrently, so
# the unanswered questions of the timeout cases cost about one deadline in all.
WIRE_TIMEOUT = 8.0


def _cache_dir() -> Path:
    base = os.environ.get("MAILSIM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mailsim"
    )
    return Path(base)


def _fetch() -> Path:
    """The suite file, from the cache or fetched with pip (the sdist is verified before use)."""
    target = _cache_dir() / "rfc7208-tests.yml"
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SUITE_SHA256:
        return target  # a damaged or different cached copy is fetched again
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp, PYSPF]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        sdists = list(Path(tmp).glob("pyspf-*.tar.gz"))
        if proc.returncode != 0 or len(sdists) != 1:
            raise RuntimeError(f"`pip download {PYSPF}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        data = sdists[0].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{PYSPF} sdist has SHA-256 {digest}, expected {SDIST_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None, MEMBER
        text = member.read()
    if hashlib.sha256(text).hexdigest() != SUITE_SHA256:
        raise RuntimeError(f"{MEMBER} in the sdist is not the pinned suite")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(text)
    partial.replace(target)
    return target


@pytest.fixture(scope="module")
def suite_file() -> Path:
    try:
        return _fetch()
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        message = f"RFC 7208 test suite not available (needs PyPI once, then cached in {_cache_dir()}): {e}"
        if CI:
            pytest.fail(message)
        pytest.skip(message)


# --- zonedata → mailsim/1 ---------------------------------------------------------------------


def _name(name: str) -> str:
    """A zonedata key in presentation form (a space or other odd byte escaped as \\DDD)."""
    return labels_to_name(label.encode() for label in name.rstrip(".").split("."))


def _txt(strings: tuple[str, ...]) -> list[str]:
    # pyspf's driver puts each string's UTF-8 on the wire; a TXT needs one string at least
    return [bytes_to_text(s.encode("utf-8")) for s in strings] or [""]


def zonedata_to_dns(zonedata: dict[str, list[Any]]) -> dict[str, Any]:
    """The ``dns:`` section that serves what pyspf's test driver answers (testspf.py).

    ``SPF`` entries are served as type SPF and, unless the name has explicit TXT
    entries, copied as TXT (``TXT: NONE`` suppresses the copy). A ``TIMEOUT`` entry
    makes every type not listed before it time out at exactly that name.
    """
    records: list[dict[str, Any]] = []
    unreachable: list[dict[str, Any]] = []
    for raw, entries in zonedata.items():
        name = _name(raw)
        explicit_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        answering: set[str] = set()
        timeout_types: set[str] = set()
        all_timeout = False
        generated: list[dict[str, Any]] = []
        for entry in entries:
            if entry == "TIMEOUT":
                all_timeout = True
                break
            ((rtype, value),) = entry.items()
            if value == "TIMEOUT":
                timeout_types.add(rtype)
                continue
            if rtype in ("TXT", "SPF") and value == "NONE":
                continue  # the driver serves nothing for it
            answering.add(rtype)
            if rtype in ("TXT", "SPF"):
                strings = (value,) if isinstance(value, str) else tuple(value)
                rec = {"name": name, "type": rtype, "value": _txt(strings)}
                records.append(rec)
                if rtype == "SPF" and not explicit_txt:
                    generated.append({**rec, "type": "TXT"})
                    answering.add("TXT")
            elif rtype == "MX":
                pref, host = value
                records.append({"name": name, "type": "MX", "value": f"{pref} {_name(host) if host else '.'}"})
            elif rtype in ("PTR", "CNAME"):
                records.append({"name": name, "type": rtype, "value": _name(value)})
            else:
                records.append({"name": name, "type": rtype, "value": str(value)})
        records.extend(generated)
        if all_timeout:
            timeout_types |= {t for t in DNS_RECORD_TYPES if t not in answering}
        if timeout_types:
            rule: dict[str, Any] = {"name": name, "subdomains": False}
            if set(DNS_RECORD_TYPES) - timeout_types:
                rule["types"] = sorted(timeout_types)
            unreachable.append(rule)
    return {"records": records, "unreachable": unreachable}


@dataclass(frozen=True)
class SuiteCase:
    id: str
    scenario: int
    ip: str
    sender: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None


def load_suite(path: Path, out_dir: Path) -> tuple[list[SuiteCase], list[Path]]:
    """The cases, and one scenario file per suite scenario (written into ``out_dir``)."""
    cases: list[SuiteCase] = []
    files: list[Path] = []
    with path.open("rb") as fh:
        docs = list(yaml.safe_load_all(fh))
    for i, doc in enumerate(docs):
        scenario = {
            "schema": "mailsim/1",
            "name": f"rfc7208-{i}",
            "description": doc.get("description", ""),
            "start": "2026-11-02T09:00:00Z",
            # no provider records: the suite's zones are the whole DNS
            "providers": {"microsoft365": {"spf_include": None}, "google": {"spf_include": None}},
            "dns": zonedata_to_dns(doc.get("zonedata") or {}),
        }
        file = out_dir / f"rfc7208-{i:02d}.yaml"
        file.write_text(json.dumps(scenario, indent=1), encoding="utf-8")  # JSON is YAML
        files.append(file)
        for cid, t in doc["tests"].items():
            results = t["result"] if isinstance(t["result"], list) else [t["result"]]
            cases.append(SuiteCase(cid, i, t["host"], t["mailfrom"], t["helo"], tuple(results), t.get("explanation")))
    return cases, files


@pytest.fixture(scope="module")
def suite(suite_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[SuiteCase], list[Path]]:
    return load_suite(suite_file, tmp_path_factory.mktemp("rfc7208"))


def _check(case: SuiteCase, res: SpfResult) -> str | None:
    """Why ``res`` disagrees with the suite, or None."""
    if res.result not in case.results:
        return f"{case.id}: {res.result} not in {case.results} ({res.explanation})"
    if case.explanation is not None:
        # the suite's driver sets the default explanation to "DEFAULT": a fail without exp=
        want = None if case.explanation == "DEFAULT" else case.explanation
        if res.exp != want:
            return f"{case.id}: exp {res.exp!r}, expected {want!r}"
    return None


@pytest.fixture(scope="module")
def zones(suite: tuple[list[SuiteCase], list[Path]]) -> list[Zone]:
    return [Zone.from_scenario(load_scenario(f)) for f in suite[1]]


@pytest.mark.timeout(600)  # the first use fetches the suite with pip (once; then it is cached)
def test_suite_has_every_case(suite: tuple[list[SuiteCase], list[Path]]) -> None:
    cases, files = suite
    assert len(cases) == CASE_COUNT
    assert len({c.id for c in cases}) == CASE_COUNT
    assert len(files) == 16


def test_every_case_in_memory(suite: tuple[list[SuiteCase], list[Path]], zones: list[Zone]) -> None:
    cases, _files = suite
    failures = [
        why
        for c in cases
        if (why := _check(c, evaluate(zones[c.scenario], c.ip, c.sender, c.helo, wire=False))) is not None
    ]
    assert failures == []
    assert len(cases) == CASE_COUNT


@pytest.fixture(scope="module")
def wire_results(suite: tuple[list[SuiteCase], list[Path]], zones: list[Zone]) -> Iterator[list[SpfResult]]:
    cases, _files = suite

    def run(c: SuiteCase) -> SpfResult:
        return evaluate(zones[c.scenario], c.ip, c.sender, c.helo, wire=True, timeout=WIRE_TIMEOUT)

    with ThreadPoolExecutor(max_workers=12) as pool:
        yield list(pool.map(run, cases))


def test_every_case_over_the_wire_equals_memory(
    suite: tuple[list[SuiteCase], list[Path]], zones: list[Zone], wire_results: list[SpfResult]
) -> None:
    cases, _files = suite
    failures = [why for c, res in zip(cases, wire_results, strict=True) if (why := _check(c, res)) is not None]
    assert failures == []
    differ = [
        c.id
        for c, res in zip(cases, wire_results, strict=True)
        if res != evaluate(zones[c.scenario], c.ip, c.sender, c.helo, wire=False)
    ]
    assert differ == []


def test_cli_json_carries_the_rfc_explanation(suite: tuple[list[SuiteCase], list[Path]]) -> None:
    """End to end: the `mailsim spf check --json` of cases with an explanation, and their plain output."""
    cases, files = suite
    with_exp = [c for c in cases if c.explanation not in (None, "DEFAULT")]
    assert len(with_exp) == 14
    for c in with_exp:
        args = ["check", str(files[c.scenario]), "--ip", c.ip, "--sender", c.sender, "--helo", c.helo]
        res = CliRunner().invoke(spf_app, [*args, "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.output)
        assert doc["result"] in c.results
        assert doc["exp"] == c.explanation
        assert doc["explanation"].endswith(f"; explanation: {c.explanation}")
