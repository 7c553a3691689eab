"""RFC 3464 delivery status notifications and the invoice message itself.

Built with the standard library's ``email`` package: a ``multipart/report;
report-type=delivery-status`` with a human part, the ``message/delivery-status``
part (per-message and per-recipient fields) and the original headers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from email.utils import format_datetime
from hashlib import sha256


def render_invoice(*, message_id: str, sender: str, rcpts: tuple[str, ...], invoice: str, start: datetime,
                   now: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(rcpts)
    msg["Subject"] = f"Invoice {invoice}"
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(start + timedelta(seconds=now))
    msg.set_content(f"Please find invoice {invoice} attached.\n")
    return msg.as_bytes()


def render_dsn(*, dsn_id: str, original_id: str, sender: str, reporting_mta: str,
               recipients: tuple[tuple[str, str, str, str], ...], start: datetime, now: int,
               original_headers: str = "") -> bytes:
    """recipients: (address, action, status, diagnostic) with action ``failed``."""
    msg = EmailMessage()
    msg["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    msg["To"] = sender
    msg["Subject"] = "Undelivered Mail Returned to Sender"
    msg["Message-ID"] = dsn_id
    msg["Date"] = format_datetime(start + timedelta(seconds=now))
    msg["Auto-Submitted"] = "auto-replied"
    msg.make_mixed()
    msg.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
    # a boundary derived from the id, not random: same run, same bytes
    msg.set_boundary("=_mailsim_" + sha256(dsn_id.encode()).hexdigest()[:24])
    human = EmailMessage()
    lines = [f"This is the mail system at host {reporting_mta}.", "",
             "Your message could not be delivered to one or more recipients.", ""]
    lines += [f"<{a}>: {diag}" for a, _act, _st, diag in recipients]
    human.set_content("\n".join(lines) + "\n")
    msg.attach(human)
    status = EmailMessage()
    status.set_type("message/delivery-status")
    per_message = EmailMessage()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Original-Envelope-Id"] = original_id.strip("<>")
    per_message["Arrival-Date"] = format_datetime(start + timedelta(seconds=now))
    blocks: list[Message | str] = [per_message]
    for addr, action, st, diag in recipients:
        block = EmailMessage()
        block["Final-Recipient"] = f"rfc822; {addr}"
        block["Action"] = action
        block["Status"] = st
        block["Diagnostic-Code"] = f"smtp; {diag}"
        blocks.append(block)
    status.set_payload(blocks)
    msg.attach(status)
    headers = EmailMessage()
    headers.set_type("text/rfc822-headers")
    headers.set_payload(original_headers or f"Message-ID: {original_id}\n")
    msg.attach(headers)
    return msg.as_bytes()
