"""RFC 7208 §4.6.4's limits as whole results: the verdict, the exact explanation and both counters.

tests/spf_cases.py checks the results and a word of the explanation; mutation testing of
net/spf.py needs the exact text and counts, at each limit and one past it.
"""

from __future__ import annotations

import pytest

from simulator.domain.dns import DnsRecord as R
from simulator.net.resolver import MemoryResolver
from simulator.net.spf import SpfResult, check_host
from simulator.net.zone import Zone

E = "example.com"
IP = "192.0.2.3"
REV = "3.2.0.192.in-addr.arpa"
HOSTS = [R(f"h{i}.example.com", "A", f"198.51.100.{i}") for i in range(1, 12)]
PTRS = [R(REV, "PTR", f"n{i}.example.com") for i in range(11)]  # n0 … n10, in this order


def spf(records: list[R], ip: str = IP) -> SpfResult:
    return check_host(ip, E, "user@example.com", "helo.example", MemoryResolver(Zone(records)))


def a_terms(n: int) -> str:
    return " ".join(f"a:h{i}.example.com" for i in range(1, n + 1))


def fail(term: str = "-all", lookups: int = 0, voids: int = 0) -> SpfResult:
    return SpfResult("fail", f"192.0.2.3 matched '{term}' in example.com", term, lookups, voids, E)


def perm(text: str, term: str, lookups: int, voids: int = 0) -> SpfResult:
    return SpfResult("permerror", text, term, lookups, voids, E)


@pytest.mark.parametrize(("records", "result"), [
    ([R(E, "TXT", f"v=spf1 {a_terms(10)} -all"), *HOSTS], fail(lookups=10)),
    ([R(E, "TXT", f"v=spf1 {a_terms(11)} -all"), *HOSTS],
     perm("more than 10 DNS-querying terms ('a:h11.example.com' in example.com is number 11)", "a:h11.example.com",
          11)),
    ([R(E, "TXT", f"v=spf1 {a_terms(9)} redirect=r.example.net"), R("r.example.net", "TXT", "v=spf1 -all"), *HOSTS],
     SpfResult("fail", "192.0.2.3 matched '-all' in r.example.net; redirected from example.com by"
                       " 'redirect=r.example.net'", "-all", 10, 0, E)),
    ([R(E, "TXT", f"v=spf1 {a_terms(10)} redirect=r.example.net"), R("r.example.net", "TXT", "v=spf1 -all"), *HOSTS],
     perm("more than 10 DNS-querying terms ('redirect=r.example.net' in example.com is number 11)",
          "redirect=r.example.net", 11)),
])
def test_ten_dns_querying_terms_and_no_more(records: list[R], result: SpfResult) -> None:
    assert spf(records) == result


@pytest.mark.parametrize(("records", "result"), [
    ([R(E, "TXT", "v=spf1 a:nx1.example.com a:nx2.example.com -all")], fail(lookups=2, voids=2)),
    ([R(E, "TXT", "v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com -all")],
     perm("more than 2 void DNS lookups (the last: A nx3.example.com)", "a:nx3.example.com", 3, 3)),
    ([R(E, "TXT", "v=spf1 mx:nx1.example.com exists:nx2.example.com ptr:x.example.com -all")],
     perm(f"more than 2 void DNS lookups (the last: PTR {REV})", "ptr:x.example.com", 3, 3)),
    # the address lookups of MX hosts are not void lookups (docs/spf.md)
    ([R(E, "TXT", "v=spf1 mx -all"), *[R(E, "MX", f"{i} m{i}.example.com") for i in range(10)]],
     fail(lookups=1, voids=0)),
])
def test_two_void_lookups_and_no_more(records: list[R], result: SpfResult) -> None:
    assert spf(records) == result


def test_ten_mx_hosts_and_no_more() -> None:
    mx = [R(E, "MX", f"{i} m{i}.example.com") for i in range(11)]
    assert spf([R(E, "TXT", "v=spf1 mx -all"), *mx[:10], R("m9.example.com", "A", IP)]) == SpfResult(
        "pass", "192.0.2.3 matched 'mx' in example.com", "mx", 1, 0, E)
    assert spf([R(E, "TXT", "v=spf1 mx -all"), *mx]) == perm("'mx': example.com has 11 MX hosts (at most 10)", "mx", 1)


@pytest.mark.parametrize(("valid", "result"), [
    ("n9.example.com", SpfResult("pass", "192.0.2.3 matched 'ptr' in example.com", "ptr", 1, 0, E)),
    ("n10.example.com", fail(lookups=1)),  # the eleventh name is never looked at
])
def test_ptr_reads_the_first_ten_names(valid: str, result: SpfResult) -> None:
    assert spf([R(E, "TXT", "v=spf1 ptr -all"), *PTRS, R(valid, "A", IP)]) == result


@pytest.mark.parametrize(("valid", "expansion"), [("n9.example.com", "n9.example.com"), ("n10.example.com", "unknown")])
def test_the_p_macro_reads_the_first_ten_names_and_counts_no_term(valid: str, expansion: str) -> None:
    target = f"{expansion}.x.example.com"
    records = [R(E, "TXT", f"v=spf1 {a_terms(9)} exists:%{{p}}.x.example.com -all"), *HOSTS, *PTRS,
               R(valid, "A", IP), R(target, "A", "127.0.0.2")]
    assert spf(records) == SpfResult("pass", "192.0.2.3 matched 'exists:%{p}.x.example.com' in example.com",
                                     "exists:%{p}.x.example.com", 10, 0, E)


# -- the lookups behind the limits: each way they end, whole (docs/testing.md: the first SPF run) ----------

LOOP = [R("l1.example.com", "CNAME", "l2.example.com"), R("l2.example.com", "CNAME", "l1.example.com")]


@pytest.mark.parametrize(("term", "result"), [
    ("a:l1.example.com", perm("CNAME loop looking up A l1.example.com", "a:l1.example.com", 1)),
    ("mx:l1.example.com", perm("CNAME loop looking up MX l1.example.com", "mx:l1.example.com", 1)),
    ("mx:m.slow.example", SpfResult("temperror", "DNS timeout looking up MX m.slow.example", "mx:m.slow.example", 1,
                                    0, E)),
])
def test_a_lookup_that_cannot_end_says_which(term: str, result: SpfResult) -> None:
    zone = Zone([R(E, "TXT", f"v=spf1 {term} -all"), *LOOP], unreachable=["slow.example"])
    assert check_host(IP, E, "user@example.com", "helo.example", MemoryResolver(zone)) == result


def test_an_mx_void_lookup_is_named_as_one() -> None:
    assert spf([R(E, "TXT", "v=spf1 a:nx1.example.com a:nx2.example.com mx:nx3.example.com -all")]) == perm(
        "more than 2 void DNS lookups (the last: MX nx3.example.com)", "mx:nx3.example.com", 3, 3)


def test_a_null_mx_host_is_skipped_not_the_end() -> None:
    records = [R(E, "TXT", "v=spf1 mx -all"), R(E, "MX", "0 ."), R(E, "MX", "10 mx.example.com"),
               R("mx.example.com", "A", IP)]
    assert spf(records) == SpfResult("pass", "192.0.2.3 matched 'mx' in example.com", "mx", 1, 0, E)


def test_the_p_macro_is_worked_out_once_per_domain_and_reused() -> None:
    records = [R(E, "TXT", "v=spf1 exists:%{p}.a.example.com exists:%{p}.b.example.com -all"),
               R(REV, "PTR", "host.example.com"), R("host.example.com", "A", IP),
               R("host.example.com.b.example.com", "A", "127.0.0.2")]
    assert spf(records) == SpfResult("pass", "192.0.2.3 matched 'exists:%{p}.b.example.com' in example.com",
                                     "exists:%{p}.b.example.com", 2, 1, E)
