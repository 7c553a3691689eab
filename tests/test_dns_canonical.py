"""``Dns.canonical``: a scenario's records are checked and canonicalised once per value, not by every run's zone.

Every simulate() builds a zone; it used to check and canonicalise each record again (a sixth of a
small run's fixed cost). These pin that the zone built from the kept records is the zone built the
long way, that an invalid record still fails where it always did (when the zone is built), and that a
record already canonical is kept as the same object.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.domain.dns import Dns, DnsRecord, normalize_record
from simulator.net.zone import Zone
from simulator.scenario.model import Scenario

R = DnsRecord


def _scn(dns: Dns) -> Scenario:
    return Scenario(name="t", start=datetime(2026, 1, 1, tzinfo=UTC), dns=dns)


def _served(z: Zone) -> list[tuple[str, str, object, int]]:
    return [(r.name, r.type, r.value, r.ttl) for r in z.records]


def test_canonical_records_are_what_the_zone_would_make() -> None:
    recs = (R("Acme.Example.", "txt", ("v=spf1 ", "-all")), R("acme.example", "mx", "10  MX.Acme.Example."),
            R("mx.acme.example", "a", "192.0.2.1"), R("www.acme.example", "cname", "Acme.Example."))
    dns = Dns(records=recs)
    assert dns.canonical is not None
    assert dns.canonical == tuple(normalize_record(r) for r in recs)
    assert [r.name for r in dns.canonical] == ["acme.example", "acme.example", "mx.acme.example", "www.acme.example"]
    assert dns.canonical[1].value == "10 mx.acme.example"
    assert _served(Zone.from_scenario(_scn(dns))) == _served(Zone(recs, (), _scn(dns).providers))
    assert dns.records == recs  # what the file said is kept for whoever shows it


def test_canonical_is_not_part_of_the_value() -> None:
    a = Dns(records=(R("acme.example", "A", "192.0.2.1"),))
    b = Dns(records=(R("ACME.example", "A", "192.0.2.1"),))
    assert a != b and a.canonical == b.canonical
    assert a == Dns(records=(R("acme.example", "A", "192.0.2.1"),))
    assert "canonical" not in repr(a)


def test_an_invalid_record_still_fails_when_the_zone_is_built() -> None:
    dns = Dns(records=(R("acme.example", "A", "not-an-address"),))
    assert dns.canonical is None
    with pytest.raises(ValueError, match="IPv4"):
        Zone.from_scenario(_scn(dns))


def test_a_canonical_record_is_kept_as_it_is() -> None:
    rec = R("acme.example", "A", "192.0.2.1")
    assert normalize_record(rec) is rec
    assert normalize_record(R("acme.example.", "A", "192.0.2.1")) == rec


_names = st.sampled_from(["acme.example", "ACME.example.", "mx.acme.example", "*.acme.example", "a.b.c.example"])
_records = st.one_of(
    st.builds(R, _names, st.sampled_from(["A", "a"]), st.sampled_from(["192.0.2.1", "192.0.2.300", "10.0.0.01"])),
    st.builds(R, _names, st.sampled_from(["MX", "mx"]), st.sampled_from(["10 mx.acme.example.", "x y", "5 A.B"])),
    st.builds(R, _names, st.just("TXT"), st.sampled_from(["v=spf1 -all", ("v=spf1 ", "?all"), ""])),
    st.builds(R, _names, st.just("CNAME"), st.sampled_from(["acme.example.", "bad..name"])),
)


@given(st.lists(_records, max_size=6))
def test_the_kept_records_serve_exactly_what_normalising_every_run_served(recs: list[DnsRecord]) -> None:
    dns = Dns(records=tuple(recs))
    try:
        slow: list[tuple[str, str, object, int]] | str = _served(Zone(recs, (), _scn(dns).providers))
    except ValueError as e:
        slow = str(e)
    try:
        fast: list[tuple[str, str, object, int]] | str = _served(Zone.from_scenario(_scn(dns)))
    except ValueError as e:
        fast = str(e)
    assert fast == slow
    assert (dns.canonical is None) == isinstance(slow, str)
