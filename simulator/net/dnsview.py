"""DNS as the platform and the receivers see it at a virtual instant, with caches.

SPF and MX answers only change when a record changes (``Zone.version``) or a
DNS fault window opens or closes, so results are cached per (question, zone
version, active-fault set). That keeps the blocked-queue gate O(senders) per
poll instead of O(emails) (DESIGN §7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simulator.domain.dns import display
from simulator.domain.faults import DNS_FAULT_KINDS, Fault
from simulator.net.resolver import DnsError, DnsTempError, MemoryResolver, NXDomain, Resolver, addresses, mx_hosts
from simulator.net.spf import check_mail_from
from simulator.net.zone import Zone


@dataclass(frozen=True, slots=True)
class MxRoute:
    """Where mail for a domain goes: the MX host and its address, or why it cannot be reached."""

    host: str | None
    ip: str | None
    error: str | None  # None | "temp" | "perm"
    detail: str


class DnsView:
    """DNS as the platform and receivers see it at a virtual instant, cached per zone version and fault epoch."""

    def __init__(self, zone: Zone, faults: Sequence[Fault], seed: int, resolver: Resolver | None = None) -> None:
        self.zone = zone
        self.seed = seed
        self.dns_faults = tuple(f for f in faults if f.kind in DNS_FAULT_KINDS)
        self._probabilistic = any(f.probability < 1.0 for f in self.dns_faults)
        self.now = 0
        self.resolver: Resolver = resolver or MemoryResolver(zone, now=lambda: self.now, faults=self.dns_faults,
                                                             seed=seed)
        self._spf: dict[tuple[object, ...], tuple[str, str]] = {}
        self._mx: dict[tuple[object, ...], MxRoute] = {}

    def epoch(self) -> tuple[int, ...]:
        """Which DNS faults are active now: part of every cache key."""
        if not self.dns_faults:
            return ()
        return tuple(f.index for f in self.dns_faults if f.active_at(self.now))

    def _key(self, *parts: object) -> tuple[object, ...] | None:
        ep = self.epoch()
        if ep and self._probabilistic:
            return None  # a partial-probability fault may answer differently per question: no cache
        return (*parts, self.zone.version, ep)

    def spf(self, now: int, ip: str, mail_from: str, helo: str) -> tuple[str, str]:
        """(result, explanation) of RFC 7208 check_host for the MAIL FROM identity."""
        self.now = now
        key = self._key(ip, mail_from.lower(), helo.lower())
        if key is not None:
            hit = self._spf.get(key)
            if hit is not None:
                return hit
        res = check_mail_from(ip, mail_from, helo, self.resolver, now=now)
        out = (res.result, res.explanation)
        if key is not None:
            self._spf[key] = out
        return out

    def mx(self, now: int, domain: str) -> MxRoute:
        """RFC 5321 §5.1: MX by preference, else the domain's own A record (implicit MX)."""
        self.now = now
        key = self._key(domain)
        if key is not None:
            hit = self._mx.get(key)
            if hit is not None:
                return hit
        route = self._route(domain)
        if key is not None:
            self._mx[key] = route
        return route

    def _route(self, domain: str) -> MxRoute:
        try:
            mxs = sorted(mx_hosts(self.resolver, domain))
        except NXDomain:
            return MxRoute(None, None, "perm", f"{domain}: no such domain (NXDOMAIN)")
        except DnsTempError as exc:
            return MxRoute(None, None, "temp", f"{domain} MX: {exc}")
        except DnsError as exc:
            return MxRoute(None, None, "perm", f"{domain} MX: {exc}")
        if mxs and all(h == "." for _, h in mxs):
            return MxRoute(None, None, "perm", f"{domain} publishes a null MX: it accepts no mail")
        hosts = [h for _, h in mxs] or [domain]
        last = ""
        temp = False
        for host in hosts:
            try:
                ips = addresses(self.resolver, host, "A") or addresses(self.resolver, host, "AAAA")
            except DnsTempError as exc:
                temp, last = True, f"{host}: {exc}"
                continue
            except DnsError as exc:
                last = f"{host}: {exc}"
                continue
            if ips:
                how = "MX" if mxs else "implicit MX (A record)"
                return MxRoute(host, ips[0], None, display(f"{domain} {how} → {host} [{ips[0]}]"))
            last = f"{host} has no address record"
        return MxRoute(None, None, "temp" if temp else "perm", display(last) or f"{domain}: no mail server")
