"""Contact addresses: validity (guide Step 4) and case-insensitive uniqueness."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from simulator.domain.entities import Contact


def normalize_email(raw: str) -> str:
    """The comparison key the product uses for uniqueness: trimmed, lower-case."""
    return raw.strip().lower()


def address_problem(raw: str) -> str | None:
    """Why ``raw`` is not a plain, sendable address, or None when it is.

    The address is checked exactly as stored: a trailing space is the guide's
    classic cause of a silently skipped recipient, so it is not trimmed first.
    No DNS: deliverability is decided later by the recipient's MX.
    """
    return _checked(raw)[0]


def envelope_address(raw: str) -> str:
    """The address SMTP uses for a valid ``raw``: lower-case, its domain as an A-label (``xn--…``).

    The platform does not speak SMTPUTF8 (§8): an internationalised domain is routed
    and addressed by its ASCII form, as email-validator reports it.
    """
    ascii_email = _checked(raw)[1]
    if ascii_email is None:
        raise ValueError(f"not a valid address: {raw!r}")
    return ascii_email.lower()


# a plain dot-atom local part and a plain ASCII domain: for such an address (of at most 64 and
# 200 characters) email-validator's only possible objections are about the domain
_ROLE_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)  # email-validator lower-cases these local parts
_PLAIN = re.compile(r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@([A-Za-z0-9.-]+)")


@lru_cache(maxsize=65536)
def _checked(raw: str) -> tuple[str | None, str | None]:
    """(problem, None) for an invalid address, (None, its ASCII form) for a valid one.

    email-validator costs ~0.1 ms an address, mostly in its domain checks, and a large
    scenario has tens of thousands of contacts over a few dozen domains: a plain address
    (see ``_PLAIN``) takes its domain's verdict, computed once per domain.
    """
    if raw == "":
        return "the address is empty", None
    m = _PLAIN.fullmatch(raw)
    if m is not None and len(m.group(1)) <= 64 and len(raw) <= 200 and m.group(1).lower() not in _ROLE_NAMES:
        problem, ascii_email = _domain_checked(m.group(2))
        return (problem, None) if ascii_email is None else (None, m.group(1) + ascii_email[1:])
    return _validate(raw)


@lru_cache(maxsize=4096)
def _domain_checked(domain: str) -> tuple[str | None, str | None]:
    return _validate("a@" + domain)


def _validate(raw: str) -> tuple[str | None, str | None]:
    try:
        valid = validate_email(
            raw,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            globally_deliverable=False,
        )
    except EmailNotValidError as exc:
        return str(exc), None
    return None, valid.ascii_email or valid.normalized


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def find_duplicate(contacts: Iterable[Contact], email: str, *, ignore_id: str | None = None) -> Contact | None:
    """The contact (active or inactive) already holding ``email``, ignoring the one being edited."""
    key = normalize_email(email)
    if not key:
        return None
    for c in contacts:
        if c.id != ignore_id and normalize_email(c.email) == key:
            return c
    return None
