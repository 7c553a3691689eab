"""Contact addresses: validity (guide Step 4) and case-insensitive uniqueness."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

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


@lru_cache(maxsize=65536)
def _checked(raw: str) -> tuple[str | None, str | None]:
    """(problem, None) for an invalid address, (None, its ASCII form) for a valid one."""
    if raw == "":
        return "the address is empty", None
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
