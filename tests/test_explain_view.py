"""The read-only view of a run that ``explain`` reads (``RunResult``), and what it must hold.

The world replayed through the domain's ``apply`` is the run's own world; a Draft
invoice carries its warnings in ``notes`` like any other (DESIGN §8); addresses read
the same, invisible characters shown, wherever they are printed.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from simulator.domain.display import visible
from simulator.engine.run import simulate
from simulator.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
H = 3600


@pytest.mark.parametrize("stem", ["tour", "step3-login-after-expiry-then-resync", "step4-duplicate-email-rejected",
                                  "step3-password-changed-resync"])
def test_replayed_world_is_the_runs_world(stem: str) -> None:
    result = simulate(load_scenario(SCENARIOS / f"{stem}.yaml"))
    assert len(result.events) > 0
    assert result.world_after(len(result.events)) == result.world
    assert result.world_at(result.end) == result.world
    assert result.world_after(0) != result.world  # the events did change something


def test_world_at_a_moment_holds_the_sync_of_that_moment() -> None:
    result = simulate(load_scenario(SCENARIOS / "step3-login-after-expiry-then-resync.yaml"))
    nora_before = result.world_at(23 * H).sync["nora"]
    nora_after = result.world_at(24 * H).sync["nora"]
    assert nora_before is not None and nora_after is not None
    assert (nora_before.synced, nora_after.synced) == (-200 * 24 * H, 24 * H)
    assert [x.kind for x in result.syncs("nora")] == ["resync"]
    assert [(x.at, x.refreshed) for x in result.logins("nora")] == [(2 * H, False)]


def test_send_record_and_queue_history() -> None:
    result = simulate(load_scenario(SCENARIOS / "step3-login-after-expiry-then-resync.yaml"))
    send = result.send_record("INV-3301")
    assert send is not None
    assert (send.at, send.sender, send.path, send.provider, send.client_ip) == (
        24 * H, "north-ar@greenacre.example", "sync", "microsoft365", "203.0.113.20")
    queue = result.queue_of("INV-3301")
    assert queue is not None and queue.branch_ids == ("downtown",)
    assert [(b.at, b.reason) for b in queue.history] == [(H, "sync-token-expired"), (24 * H, None)]
    assert result.send_record("NO-SUCH") is None and result.queue_of("NO-SUCH") is None


def test_draft_invoice_json_notes_carry_the_billing_warning() -> None:
    scn = load_scenario(SCENARIOS / "step5-billing-contact-not-emailed.yaml")
    draft = simulate(replace(scn, until=H // 2, expect=()))  # before complete_batch at +1h
    (inv,) = draft.to_json()["invoices"]
    assert (inv["batch_status"], inv["email_status"]) == ("Draft", "N/A")
    assert inv["notes"] == ["billing-contact-not-emailed"]
    (done,) = simulate(scn).to_json()["invoices"]
    assert (done["batch_status"], done["notes"]) == ("Sent", ["billing-contact-not-emailed"])


def test_pending_invoice_json_notes_carry_the_billing_warning() -> None:
    scn = load_scenario(SCENARIOS / "step5-invoice-recipients-billing.yaml")
    # the same property with the default roles: the billing contact lacks Email Invoice
    org = replace(scn.organization, configuration=replace(scn.organization.configuration,
                                                          invoice_recipients=("email_invoice",)))
    result = simulate(replace(scn, organization=org, until=0, expect=()))
    notes = {v["id"]: (v["email_status"], v["notes"]) for v in result.to_json()["invoices"]}
    assert notes == {"INV-5901": ("Pending", ["billing-contact-not-emailed"])}


@pytest.mark.parametrize(("raw", "shown"), [
    ("ben@oak.example ", "ben@oak.example␠"),
    ("ben@oak.example\xa0", "ben@oak.example\\xa0"),
    (" a b@x.example", "␠a␠b@x.example"),
    ("ann\u200b@x.example", "ann\\u200b@x.example"),
    ("tab\t@x.example", "tab\\x09@x.example"),
    ("ida@bücher.example", "ida@bücher.example"),
    ("plain@x.example", "plain@x.example"),
])
def test_visible_address(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_explain_imports_no_engine_internals() -> None:
    for path in (ROOT / "simulator" / "explain").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simulator.engine"):
                assert node.module in {"simulator.engine.result", "simulator.engine.run"}, (path.name, node.module)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_explanation_names_its_code_and_fixes_only_what_needs_fixing(path: Path) -> None:
    """DESIGN §8 over the whole library: the code in every headline; no fix: once every recipient has it."""
    from simulator.explain.explain import explain_run

    result = simulate(load_scenario(path))
    for x in explain_run(result):
        v = result.invoice(x.invoice)
        assert v is not None
        if v.reason:
            assert f"[{v.reason}]" in x.headline, x.headline
        else:
            assert "  [" in x.headline and x.headline.rstrip().endswith(("]", "more like it)")), x.headline
        if v.email_status == "Sent" and v.recipients and all(r.outcome == "inbox" for r in v.recipients):
            assert x.fix == "", (x.invoice, x.fix)
        if v.email_status in ("N/A", "Pending") or v.reason:
            assert x.fix, (x.invoice, x.status, x.reason)
        queue = result.queue_of(x.invoice)
        if queue is not None and len(queue.branch_ids) > 1:
            assert "branch/region" not in x.fix and "on the branch" not in x.fix, x.fix  # Configuration alone
