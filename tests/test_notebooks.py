"""The notebooks in ``notebooks/`` run top to bottom (nbclient, the venv's python3 kernel) and say what they should."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import ipykernel  # noqa: F401  (the notebooks extra, in .[dev]: the python3 kernel they run in)
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
EXPECTED = {"why-is-this-invoice-stuck", "token-expiry-login-interval", "spf-and-the-junk-folder"}


def execute(path: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                                     resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()  # raises CellExecutionError, naming the cell, when one fails
    return nb


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def summary(nb: Any) -> dict[str, Any]:
    [cell] = [c for c in nb.cells if "summary" in c.get("metadata", {}).get("tags", [])]
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def executed() -> dict[str, Any]:
    return {}


def run(name: str, executed: dict[str, Any]) -> Any:
    if name not in executed:
        executed[name] = execute(NB_DIR / f"{name}.ipynb")
    return executed[name]


def test_the_notebooks_are_there_and_committed_without_outputs() -> None:
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, f"{path.name}: commit without outputs"


def test_kernel_is_this_venv(executed: dict[str, Any]) -> None:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    cmd = km.format_kernel_cmd()
    assert Path(cmd[0]).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_without_errors_and_draws(name: str, executed: dict[str, Any]) -> None:
    nb = run(name, executed)
    outs = outputs(nb)
    assert not [o for o in outs if o.get("output_type") == "error"]
    images = [o for o in outs if "image/png" in o.get("data", {})]
    assert len(images) >= 1, f"{name}: no figure was drawn"
    assert summary(nb)["figures"] >= 1


def test_stuck_invoice_notebook_findings(executed: dict[str, Any]) -> None:
    s = summary(run("why-is-this-invoice-stuck", executed))
    assert s["stuck"] == ["INV-1004"] and s["reason"] == "sync-token-expired" and s["guide_steps"] == [3]
    assert s["stuck_after_fix"] == [] and s["first_divergence"] == "sync.resynced"
    assert s["counts_at_end"] == {"Pending": 1, "N/A": 1, "In Queue": 0, "In Queue (stuck)": 1, "Sent": 4}


def test_token_expiry_notebook_findings(executed: dict[str, Any]) -> None:
    s = summary(run("token-expiry-login-interval", executed))
    rows = list(zip(s["intervals"], s["share_stuck"], s["mean_days_to_inbox"], strict=True))
    assert s["lost"] == 0
    under = [r for r in rows if r[0] < 90]
    over = [r for r in rows if r[0] > 90]
    assert under and over
    assert all(share == 0 and wait == 0 for _, share, wait in under)
    assert all(share > 0 and wait > 0 for _, share, wait in over)
    assert [r[1] for r in over] == sorted(r[1] for r in over)  # a longer interval never helps
    for k, share, _ in over:  # about (k − 90)/k of the time the token is dead
        assert abs(share - (k - 90) / k) < 0.03, (k, share)


def test_spf_notebook_findings(executed: dict[str, Any]) -> None:
    s = summary(run("spf-and-the-junk-folder", executed))
    assert s["Google, -all | Google sync"] == {"spf": "pass", "outcomes": {"inbox": 10}}
    assert s["Microsoft only, ~all | Google sync"] == {"spf": "softfail", "outcomes": {"bounced": 5, "junk": 5}}
    assert s["Microsoft only, -all | Google sync"]["outcomes"] == {"bounced": 10}
    assert s["two SPF records | Google sync"] == {"spf": "permerror", "outcomes": {"junk": 10}}
    assert s["platform IP, -all | platform SMTP"] == {"spf": "pass", "outcomes": {"inbox": 10}}
    assert s["Google, ~all | platform SMTP"] == {"spf": "softfail", "outcomes": {"In Queue": 10}}
    assert s["no SPF record | platform SMTP"]["outcomes"] == {"In Queue": 10}
