"""``mailsim explain`` over the scenario library: for the invoice at the centre of each story it
names the guide step(s) and its evidence chain carries the key dates; the same through the CLI
(JSON); and ``docs/reasons.md`` lists every reason code with its step, check and fix.

Run ``python tests/test_explain.py`` to print the reasons table that ``docs/reasons.md`` holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from simulator.domain.reasons import REASONS, ReasonInfo
from simulator.explain.explain import LATE_EDIT_FIX, MULTI_BRANCH_FIX, Explanation, explain_scenario
from simulator.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
REASONS_DOC = ROOT / "docs" / "reasons.md"
H = 3600
M = 60


@dataclass(frozen=True)
class Case:
    stem: str
    invoice: str
    steps: tuple[int, ...]  # exactly these guide steps (0: after the email left the platform)
    chain: tuple[str, ...] = ()  # each must appear in some line of the evidence chain
    warnings: tuple[str, ...] = ()  # each must start one of the warnings
    at: int | None = None  # explain the state at this offset (the middle of a timing story)
    status: str | None = None
    reason: str | None = None
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())
    absent: tuple[str, ...] = ()  # none of these may appear in any line of the chain
    fix: str | None = None  # exactly this fix ("" = no fix line); None: not checked
    headline: str = ""  # must appear in the headline

    @property
    def id(self) -> str:
        return f"{self.stem}:{self.invoice}" + (f"@{self.at // 60}m" if self.at is not None else "")


CASES = [
    # Step 1 / 5 (every explanation names its reason code, N/A and Pending too)
    Case("step5-no-email-invoice-contact", "INV-2001", (1, 5), status="N/A", reason="no-invoice-email-contact",
         headline="[no-invoice-email-contact]",
         chain=("property oak-ave contacts: olga <olga@oak.example> [Primary]",
                "batch NOV completed 2026-11-02 10:00Z with status N/A")),
    Case("step1-batch-left-in-draft", "INV-1102", (1,), status="Pending", reason="batch-draft",
         headline="[batch-draft]",
         chain=("batch NOV-DOWN (1 invoices) is Draft at 2026-11-04 09:00Z", "nothing in the timeline completes it")),
    Case("step1-in-queue-more-than-an-hour", "INV-1802", (3,), status="In Queue", reason="sync-password-changed",
         chain=("email queued 2026-11-02 10:00Z", "stuck since 2026-11-02 11:00Z",
                "password changed 2026-11-01 09:00Z")),
    # Step 2
    Case("step2-sender-not-a-user", "INV-1601", (2,), at=2 * H, status="In Queue", reason="sender-not-a-user",
         chain=("branch lakeside Invoicing Email From = invoices@greenacre.example",
                "no user has the email invoices@greenacre.example")),
    Case("step2-sender-not-configured", "INV-1701", (2,), at=2 * H, status="In Queue", reason="sender-not-configured",
         chain=("region north has no Invoicing Email From", "Configuration has no Invoice Email From")),
    Case("step2-multi-branch-batch", "INV-1503", (3,), status="In Queue", reason="sync-token-expired",
         chain=("branch lakeside Invoicing Email From = lakeside@greenacre.example", "expired 2026-10-23 09:00Z")),
    Case("step2-multi-branch-batch", "INV-1501", (2,), status="Sent", fix="", headline="[no reason code: sent cleanly]",
         chain=("by billing@greenacre.example via sync path",),
         warnings=("multi-branch-uses-configuration",)),
    Case("step2-multi-branch-batch", "INV-1502", (2,), status="Sent",
         chain=("by billing@greenacre.example via sync path",), warnings=("multi-branch-uses-configuration",)),
    # a multi-branch batch without a Configuration sender: Configuration alone decides (DESIGN §8)
    Case("step2-multi-branch-no-configuration-sender", "INV-1511", (2,), at=2 * H, status="In Queue",
         reason="sender-not-configured", headline="[sender-not-configured]",
         chain=("the batch spans branches downtown, lakeside: a multi-branch batch is sent by Configuration's"
                " Invoice Email From alone (branch and region settings do not apply)",
                "Configuration has no Invoice Email From"),
         absent=("no Invoicing Email From on downtown", "its region"),
         fix=MULTI_BRANCH_FIX["sender-not-configured"], warnings=("multi-branch-uses-configuration",)),
    Case("step2-multi-branch-no-configuration-sender", "INV-1512", (2,), status="Sent", fix="",
         chain=("blocked from 2026-11-02 10:00Z by sender-not-configured: the batch spans branches downtown,"
                " lakeside",
                "unblocked by set_invoicing_email_from at 2026-11-02 12:00Z",
                "dan@birch.example: inbox at 2026-11-02 12:00Z"),
         absent=("no Invoicing Email From on downtown",)),
    Case("step2-region-sender", "INV-1301", (1,), status="Sent",
         chain=("by north-ar@greenacre.example via sync path",)),
    Case("step2-branch-sender", "INV-1201", (1,), status="Sent",
         chain=("by lakeside@greenacre.example via sync path from 203.0.113.30",)),
    Case("step2-configuration-fallback", "INV-1401", (1,), status="Sent",
         chain=("by billing@greenacre.example via smtp path from 198.51.100.10",)),
    # Step 3
    Case("step3-token-expired", "INV-3101", (3,), status="In Queue", reason="sync-token-expired",
         chain=("region north Invoicing Email From = north-ar@greenacre.example",
                "last (re)sync 2026-04-16 09:00Z",
                "token last refreshed 2026-07-30 09:00Z by login; lifetime 90d; expired 2026-10-28 09:00Z",
                "stuck since 2026-11-02 11:00Z")),
    Case("step3-login-after-expiry-then-resync", "INV-3301", (3,), at=3 * H, status="In Queue",
         reason="sync-token-expired",
         chain=("expired 2026-10-28 09:00Z", "logins after expiry did not revive it: 2026-11-02 11:00Z")),
    Case("step3-login-after-expiry-then-resync", "INV-3301", (3,), status="Sent",
         chain=("it waited 23h in the queue first", "blocked from 2026-11-02 10:00Z by sync-token-expired",
                "unblocked by resync at")),
    # sent evidence as it stood when it was sent; the expired sender named; no fix once in the inbox
    Case("step3-expired-sender-replaced", "INV-3701", (3,), status="In Queue", reason="sync-token-expired",
         at=1 * H + 30 * M,
         chain=("branch lakeside Invoicing Email From = lakeside@greenacre.example",
                "token last refreshed 2026-07-25 09:00Z by login; lifetime 90d; expired 2026-10-23 09:00Z"),
         fix=REASONS["sync-token-expired"].fix),
    Case("step3-expired-sender-replaced", "INV-3701", (3,), status="In Queue", reason="sync-token-expired",
         at=2 * H + 30 * M,
         chain=("branch lakeside Invoicing Email From = ed@greenacre.example",
                "the senders it has waited for: sender lakeside@greenacre.example (user lee, google): the token"
                " expired 2026-10-23 09:00Z; then from 2026-11-02 11:00Z sender ed@greenacre.example (user ed,"
                " google): the token expired 2026-11-01 09:00Z",
                "token last refreshed 2026-08-03 09:00Z by login; lifetime 90d; expired 2026-11-01 09:00Z")),
    Case("step3-expired-sender-replaced", "INV-3701", (3,), status="Sent", fix="",
         chain=("sent 2026-11-02 12:00Z by dora@greenacre.example via sync path",
                "user dora syncs with google; last (re)sync 2026-10-13 09:00Z",
                "later, after it was sent (not part of this send): user dora's password change at 2026-11-04"
                " 09:00Z; re-sync at 2026-11-05 09:00Z",
                "blocked from 2026-11-02 10:00Z by sync-token-expired: sender lakeside@greenacre.example"
                " (user lee, google): the token expired 2026-10-23 09:00Z; then from 2026-11-02 11:00Z sender"
                " ed@greenacre.example (user ed, google): the token expired 2026-11-01 09:00Z",
                "unblocked by set_invoicing_email_from at 2026-11-02 12:00Z"),
         absent=("last (re)sync 2026-11-05", "password changed 2026-11-04")),
    Case("step3-login-at-day-85-saves-token", "INV-3201", (1,), status="Sent",
         chain=("batch NOV-LAKE completed 2026-11-10 09:00Z; sent 2026-11-10 09:00Z by lakeside@greenacre.example"
                " via sync path",)),
    Case("step3-login-interval-what-if", "W6-001", (3,), status="In Queue", reason="sync-token-expired",
         chain=("batch W6 completed 2026-12-07 10:00Z",
                "token last refreshed 2026-09-03 09:00Z by login; lifetime 90d; expired 2026-12-02 09:00Z",
                "stuck since 2026-12-07 11:00Z")),
    Case("step3-login-interval-what-if", "W1-001", (1,), status="Sent",
         chain=("expires 2026-12-02 09:00Z", "dan@birch.example: inbox at 2026-11-02 10:00Z")),
    Case("step3-password-changed-resync", "INV-3401", (3,), at=3 * H, status="In Queue",
         reason="sync-password-changed",
         chain=("last (re)sync 2026-10-13 09:00Z",
                "password changed 2026-11-02 09:30Z, after the last sync 2026-10-13 09:00Z")),
    Case("step3-unsupported-provider-spf-fixed", "INV-3501", (3,), at=2 * H, status="In Queue",
         reason="sender-spf-not-authorized",
         chain=("zoho is not Microsoft 365 or Google Workspace",
                "SPF of greenacre.example for platform IP 198.51.100.10: fail"),
         warnings=("sync-provider-unsupported",)),
    Case("step3-dns-timeout-spf-temperror", "INV-3601", (3,), at=2 * H, status="In Queue",
         reason="sender-spf-not-authorized",
         chain=("SPF of greenacre.example for platform IP 198.51.100.10: temperror",)),
    # Step 4
    Case("step4-invalid-address-trailing-space", "INV-4101", (4, 5), status="Sent", reason="no-deliverable-recipient",
         chain=("recipient ben@oak.example␠ (ben) skipped [recipient-email-invalid]", "SPACE")),
    Case("step4-invalid-address-second-recipient", "INV-4201", (4,), status="Sent",
         chain=("recipient ben@oak,example (ben) skipped [recipient-email-invalid]",
                "olga@oak.example: inbox at 2026-11-02 10:00Z")),
    Case("step4-inactive-contact", "INV-4401", (4,), status="Sent",
         chain=("recipient fay@elm.example (fay) skipped [recipient-contact-inactive]",)),
    Case("step4-inactive-contact", "INV-4402", (1, 4, 5), status="N/A", reason="no-invoice-email-contact",
         chain=("fred <fred@fir.example> [Email Invoice, inactive]",)),
    Case("step4-duplicate-email-rejected", "INV-4301", (4,), status="Sent",
         chain=("2026-11-02 09:30Z: changing jane's email to jane@cedar.example was refused (already used by"
                " jane-2019, an inactive contact) [duplicate-email-rejected]",
                "jane.old@cedar.example: inbox at 2026-11-02 10:00Z")),
    # a contact corrected after its batch completed: mentioned on the invoice it did not reach
    Case("step4-contact-corrected-after-completion", "INV-4501", (0, 4), status="Sent", fix=LATE_EDIT_FIX,
         headline="[unknown-recipient]",
         chain=("bne@oak.example: bounced at 2026-11-02 10:00Z [unknown-recipient] 550 5.1.1",
                "contact ben's email changed at 2026-11-02 11:00Z to ben@oak.example, after the email was generated"
                " for the old address bne@oak.example")),
    Case("step4-contact-corrected-after-completion", "INV-4502", (1,), status="Sent", fix="",
         chain=("ben@oak.example: inbox at 2026-11-02 12:00Z",), absent=("changed at",)),
    # scenarios of this round's domain fixes (issue 11 items 1-4, issue 10 item 7)
    Case("step2-sender-address-with-spaces", "INV-2201", (0, 4), status="Sent",
         chain=("sent 2026-11-02 10:00Z by ok@acme.example via smtp path",
                "a bounce-back (DSN) is in ok@acme.example's inbox"),
         fix=REASONS["unknown-recipient"].fix),
    Case("step3-password-change-and-resync-same-second", "INV-3402", (1,), status="Sent", fix="",
         chain=("user lee syncs with google; last (re)sync 2026-11-02 09:30Z",),
         absent=("password changed",)),
    Case("step3-resync-without-sync-refused", "INV-8801", (3,), status="Sent", fix="",
         chain=("blocked from 2026-11-02 10:00Z by sender-spf-not-authorized",
                "unblocked by set_sync at 2026-11-02 12:00Z",
                "2026-11-02 11:00Z: resync of sender user rosa was refused [no-sync-to-resync]: the user has no"
                " email sync to re-authorise, so the re-sync was refused — nothing changed")),
    Case("step3-resync-without-sync-refused", "INV-8801", (3,), status="In Queue", at=2 * H + 30 * M,
         reason="sender-spf-not-authorized", fix=REASONS["sender-spf-not-authorized"].fix,
         chain=("user rosa has no email sync: SMTP path",
                "2026-11-02 11:00Z: resync of sender user rosa was refused [no-sync-to-resync]")),
    Case("step3-token-lifetime-shortened", "INV-N1", (3,), status="Sent", fix="",
         chain=("blocked from 2026-11-02 11:00Z by sync-token-expired: sender nora@greenacre.example (user nora,"
                " microsoft365): the token expired 2026-10-23 09:00Z",
                "token last refreshed 2026-11-02 13:00Z by sync; lifetime 30d; expires 2026-12-02 13:00Z")),
    Case("step3-token-lifetime-shortened", "INV-S1", (1,), status="Sent", fix="",
         chain=("lifetime 30d; expires 2026-11-22 09:00Z",)),
    Case("step4-internationalised-recipient-domain", "INV-4401", (4,), status="Sent",
         chain=("ida@bücher.example: inbox at 2026-11-02 10:00Z",
                "recipient jörg@bücher.example (jorg) skipped [recipient-email-invalid]"),
         fix=REASONS["recipient-email-invalid"].fix),
    # Step 5
    Case("step5-billing-contact-not-emailed", "INV-5801", (1, 5), status="N/A", reason="no-invoice-email-contact",
         chain=("eve <eve@cedar.example> [Primary, Billing]",), warnings=("billing-contact-not-emailed",)),
    Case("step5-invoice-recipients-billing", "INV-5901", (1,), status="Sent",
         chain=("eve@cedar.example: inbox at 2026-11-02 10:00Z", "ed@cedar.example: inbox at 2026-11-02 10:00Z")),
    # after sending
    Case("after-sending-unknown-recipient-bounce", "INV-5101", (0, 4), status="Sent",
         chain=("cat@pine.example: bounced at 2026-11-02 10:00Z [unknown-recipient] 550 5.1.1",
                "a bounce-back (DSN) is in lakeside@greenacre.example's inbox")),
    Case("after-sending-spf-softfail-junk", "INV-5201", (0, 3), status="Sent",
         chain=("ann@maple.example: junk at 2026-11-02 10:00Z after 1 attempt(s) because of spf-softfail-junk",)),
    Case("after-sending-spf-fail-rejected", "INV-5301", (0, 3), status="Sent",
         chain=("dan@birch.example: bounced at 2026-11-02 10:00Z [spf-fail-rejected] 550 5.7.23",
                "north-ar@greenacre.example's inbox")),
    Case("after-sending-greylisted", "INV-5401", (0,), at=1 * H + 10 * M, status="Sent",
         chain=("deferred after 2 attempt(s) [greylisted] 451 4.7.1",)),
    Case("after-sending-greylisted", "INV-5401", (1,), status="Sent",
         chain=("ann@maple.example: inbox at 2026-11-02 10:15Z after 3 attempt(s)",)),
    Case("after-sending-rate-limited", "NOV-BIG-06", (0,), at=1 * H, status="Sent",
         chain=("deferred after 1 attempt(s) [rate-limited] 421 4.7.28",)),
    Case("after-sending-rate-limited", "NOV-BIG-06", (1,), status="Sent",
         chain=("a06@bigmail.example: inbox at 2026-11-02 10:15Z after 3 attempt(s)",)),
    Case("after-sending-recipient-outage", "INV-5501", (0,), at=1 * H + 20 * M, status="Sent",
         chain=("[remote-outage] 421 4.3.2",)),
    Case("after-sending-recipient-outage", "INV-5501", (1,), status="Sent",
         chain=("ann@maple.example: inbox at 2026-11-02 10:35Z after 4 attempt(s)",)),
    Case("after-sending-retries-exhausted", "INV-5601", (0,), status="Sent",
         chain=("olga@oak.example: bounced at 2026-11-07 10:00Z [retries-exhausted] last reply: 421 4.3.2",
                "billing@greenacre.example's inbox")),
    Case("after-sending-mailbox-full", "INV-5702", (0,), status="Sent",
         chain=("completed 2026-11-02 11:00Z", "[mailbox-full] 452 4.2.2")),
    Case("after-sending-remote-permfail", "INV-6101", (0,), status="Sent",
         chain=("olga@oak.example: bounced at 2026-11-02 10:00Z [remote-permfail] 550 5.3.0",)),
    Case("after-sending-remote-disconnect", "INV-6201", (0,), at=1 * H + 20 * M, status="Sent",
         chain=("[remote-disconnect] (connection dropped)",)),
    Case("after-sending-mx-lookup-failed", "INV-6301", (0,), status="Sent",
         chain=("rob@birchh.example: bounced at 2026-11-02 10:00Z [mx-lookup-failed] 550 5.1.2",
                "no such domain (NXDOMAIN)")),
    Case("after-sending-spf-temperror-deferred", "INV-6401", (0, 3), at=1 * H + 10 * M, status="Sent",
         chain=("[spf-temperror-deferred] 451 4.7.24",)),
    Case("after-sending-message-too-big", "INV-6101", (0,), status="Sent",
         chain=("gil@tiny.example: bounced at 2026-11-02 10:00Z [message-too-big] 552 5.3.4",)),
    Case("after-sending-spf-softfail-deferred", "INV-6201", (0, 3), at=2 * H, status="Sent",
         chain=("[spf-softfail-deferred] 451 4.7.24",)),
    Case("after-sending-seeded-tempfail", "NOV-8", (0,), at=1 * H + 5 * M, status="Sent",
         chain=("c8@maple.example: deferred after 2 attempt(s) [remote-tempfail] 451 4.3.0",)),
    # the tour
    Case("tour", "INV-1004", (3,), status="In Queue", reason="sync-token-expired",
         chain=("expired 2026-10-28 09:00Z",)),
    Case("tour", "INV-1007", (0, 3), status="Sent",
         chain=("by hillside@greenacre.example via sync path from 203.0.113.20",
                "gus@gum.example: junk at 2026-11-02 10:00Z after 1 attempt(s) because of spf-softfail-junk")),
]


@cache
def _explain(stem: str, at: int | None, invoice: str) -> Explanation:
    scn = load_scenario(SCENARIOS / f"{stem}.yaml")
    (x,) = explain_scenario(scn, until=at, invoice=invoice)
    return x


def _check(case: Case, x: Explanation) -> None:
    assert x.invoice == case.invoice
    if case.status is not None:
        assert x.status == case.status
    if case.reason is not None:
        assert x.reason == case.reason
    for want in case.chain:
        assert any(want in line for line in x.chain), f"{want!r} not in chain:\n" + "\n".join(x.chain)
    for unwanted in case.absent:
        assert not any(unwanted in line for line in x.chain), f"{unwanted!r} in chain:\n" + "\n".join(x.chain)
    if case.fix is not None:
        assert x.fix == case.fix
    assert case.headline in x.headline
    for want in case.warnings:
        assert any(w.startswith(want) for w in x.warnings), f"{want!r} not in warnings {x.warnings}"
    assert x.steps == case.steps, f"guide steps {x.steps} (expected {case.steps})"


def test_cases_cover_every_cause_scenario() -> None:
    stems = {c.stem for c in CASES}
    files = {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert files <= stems, f"no explain case for {sorted(files - stems)}"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_explain_names_step_and_evidence(case: Case) -> None:
    _check(case, _explain(case.stem, case.at, case.invoice))


def test_fix_comes_from_the_reason_table() -> None:
    x = _explain("step3-token-expired", None, "INV-3101")
    assert x.fix == REASONS["sync-token-expired"].fix
    assert "Step 3" in x.guide_steps


# -- through the command line ------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


CLI_CASES = [c for c in CASES if not c.marks and c.stem in {
    "step3-token-expired", "step5-no-email-invoice-contact", "step4-invalid-address-trailing-space",
    "step3-unsupported-provider-spf-fixed", "after-sending-spf-softfail-junk", "after-sending-retries-exhausted",
}]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CLI_CASES])
def test_cli_explain_json(case: Case) -> None:
    args = ["explain", f"scenarios/{case.stem}.yaml", "--invoice", case.invoice, "--json"]
    if case.at is not None:
        args += ["--at", f"+{case.at // 60}m"]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    (obj,) = json.loads(proc.stdout)
    x = Explanation(obj["invoice"], obj["email_status"], obj["reason"], obj["headline"], obj["chain"],
                    tuple(obj["guide_steps"]), obj["fix"], obj["warnings"], obj["count"])
    _check(case, x)


def test_cli_explain_unknown_invoice_is_bad_input() -> None:
    proc = _cli("explain", "scenarios/tour.yaml", "--invoice", "INV-9999", "--json")
    assert proc.returncode == 2
    assert "INV-9999" in proc.stderr


def test_cli_run_tour_json() -> None:
    proc = _cli("run", "scenarios/tour.yaml", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    data = json.loads(proc.stdout)
    assert all(x["ok"] for x in data["expectations"])
    rows = {v["id"]: (v["email_status"], v["reason"]) for v in data["invoices"]}
    assert rows["INV-1004"] == ("In Queue", "sync-token-expired")
    assert data["mailboxes"]["gus@gum.example"] == {"inbox": 0, "junk": 1, "bounces": 0}


# -- docs/reasons.md ---------------------------------------------------------------------------

STEP_NAMES = {0: "after sending", 1: "Step 1", 2: "Step 2", 3: "Step 3", 4: "Step 4", 5: "Step 5"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(info: ReasonInfo) -> str:
    steps = ", ".join(STEP_NAMES[s] for s in info.steps)
    return (f"| `{info.code}` | {info.kind} | {info.where} | {steps} | {_cell(info.title)} | {_cell(info.check)}"
            f" | {_cell(info.fix)} |")


def render_reasons_table() -> str:
    """The table in docs/reasons.md, generated from ``simulator.domain.reasons.REASONS``."""
    head = ("| code | kind | where | guide step | meaning | what to check | how to fix |\n"
            "|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(_row(info) for info in REASONS.values()) + "\n"


def test_every_reason_code_is_documented() -> None:
    text = REASONS_DOC.read_text()
    missing = [c for c in REASONS if f"`{c}`" not in text]
    assert not missing, f"docs/reasons.md lacks {missing}"


def test_reasons_doc_table_is_current() -> None:
    assert render_reasons_table() in REASONS_DOC.read_text(), (
        "docs/reasons.md is out of date: paste the output of `python tests/test_explain.py`"
    )


if __name__ == "__main__":
    sys.stdout.write(render_reasons_table())
