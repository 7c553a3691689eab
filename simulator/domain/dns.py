"""DNS data as a zone holds it: the records a scenario publishes and the names that never answer."""

from __future__ import annotations

from dataclasses import dataclass

DNS_RECORD_TYPES: tuple[str, ...] = ("A", "AAAA", "MX", "TXT", "SPF", "CNAME", "PTR", "NS")


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # lower case, no trailing dot; may start with "*." (wildcard)
    type: str  # upper case: A, AAAA, MX, TXT, SPF, CNAME, PTR, NS
    value: str | tuple[str, ...]  # TXT/SPF may be several character-strings
    ttl: int = 300

    @property
    def text(self) -> str:
        """TXT/SPF strings joined as RFC 7208 §3.3 says (no separator)."""
        return "".join(self.value) if isinstance(self.value, tuple) else self.value


@dataclass(frozen=True, slots=True)
class Dns:
    records: tuple[DnsRecord, ...] = ()
    unreachable: tuple[str, ...] = ()
