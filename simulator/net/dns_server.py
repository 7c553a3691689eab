"""An authoritative DNS server on loopback, answering from a live ``Zone``.

It exists so that wire-mode runs, ``mailsim spf check --wire`` and outside
tools (dig, a real MTA under test) resolve the scenario's DNS through real
UDP/TCP packets, with the same answers the in-memory resolver gives: every
decision is the zone's (``Zone.lookup``), this module only encodes it.

Packet rules that matter to clients:

- answers carry AA; negative answers carry a synthetic SOA in the authority
  section so resolvers can tell NXDOMAIN/NODATA apart and cache them;
- records are rendered in zone order (``want_shuffle=False``): dnspython
  would otherwise shuffle every RRset and wire-mode SPF (``ptr``, ``mx``
  limits) could differ between runs;
- a UDP answer larger than 512 bytes, or than the EDNS payload the client
  offered (never more than 1,232 bytes, the DNS flag-day value: the server is
  no amplifier), goes out empty with TC set so the client retries over TCP,
  where the full answer is sent; an answer too big even for TCP (65,535
  bytes) is SERVFAIL — the zone decides that, so memory runs agree;
- ``unreachable`` names and active ``dns_timeout`` faults get no reply at all;
  ``dns_servfail`` faults get SERVFAIL;
- malformed packets never stop the server: a query with a readable header
  gets FORMERR, anything else (and anything with QR set) is dropped.

Only loopback addresses may be bound: this is a test fixture, not a service.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.SPF
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

from simulator.domain.dns import DnsRecord, labels_to_name, name_to_labels, parse_mx, txt_strings
from simulator.domain.faults import Fault
from simulator.net.zone import NXDOMAIN, SERVFAIL, TIMEOUT, Zone

log = logging.getLogger(__name__)

IN = dns.rdataclass.IN
UDP_DEFAULT_LIMIT = 512
# The DNS flag day 2020 value: no UDP answer above it, whatever the client offers, so a
# spoofed small query never buys a big reply (no amplifier) and nothing needs IP fragments.
UDP_MAX_LIMIT = 1232
TCP_LIMIT = 65535
TCP_IDLE_TIMEOUT = 30.0
NEGATIVE_TTL = 60
SOA_MNAME = "ns.mailsim.test"
SOA_RNAME = "hostmaster.mailsim.test"


def text_to_name(name: str) -> dns.name.Name:
    """The absolute dnspython name of a presentation name (the zone's spelling, escapes decoded)."""
    return dns.name.Name([*name_to_labels(name), b""])


def name_to_text(name: dns.name.Name) -> str:
    """A dnspython name in the zone's spelling (canonical presentation), so any label bytes are looked up exactly."""
    return labels_to_name(lab for lab in name.labels if lab != b"")


def _rdata(rec: DnsRecord) -> dns.rdata.Rdata:
    t = rec.type
    if t == "A":
        return dns.rdtypes.IN.A.A(IN, dns.rdatatype.A, str(rec.value))
    if t == "AAAA":
        return dns.rdtypes.IN.AAAA.AAAA(IN, dns.rdatatype.AAAA, str(rec.value))
    if t == "MX":
        pref, host = parse_mx(str(rec.value))
        return dns.rdtypes.ANY.MX.MX(IN, dns.rdatatype.MX, pref, text_to_name(host))
    if t == "TXT":
        return dns.rdtypes.ANY.TXT.TXT(IN, dns.rdatatype.TXT, txt_strings(rec.value))
    if t == "SPF":
        return dns.rdtypes.ANY.SPF.SPF(IN, dns.rdatatype.SPF, txt_strings(rec.value))
    target = text_to_name(str(rec.value))
    if t == "CNAME":
        return dns.rdtypes.ANY.CNAME.CNAME(IN, dns.rdatatype.CNAME, target)
    if t == "PTR":
        return dns.rdtypes.ANY.PTR.PTR(IN, dns.rdatatype.PTR, target)
    if t == "NS":
        return dns.rdtypes.ANY.NS.NS(IN, dns.rdatatype.NS, target)
    raise ValueError(f"cannot render record type {t}")


def _soa(owner: str, serial: int) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(text_to_name(owner), IN, dns.rdatatype.SOA)
    rd = dns.rdtypes.ANY.SOA.SOA(
        IN,
        dns.rdatatype.SOA,
        text_to_name(SOA_MNAME),
        text_to_name(SOA_RNAME),
        serial & 0xFFFFFFFF,
        3600,
        600,
        86400,
        NEGATIVE_TTL,
    )
    rrset.add(rd, NEGATIVE_TTL)
    return rrset


def _apex(name: str) -> str:
    """Owner of the synthetic SOA: the registrable-looking last two labels."""
    labels = [lab for lab in name.split(".") if lab]
    return ".".join(labels[-2:]) if labels else "."


def _header_only(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A bare reply (no sections) for a packet dnspython could not parse."""
    qid, flags = struct.unpack("!HH", wire[:4])
    opcode_bits = flags & 0x7800
    rd = flags & 0x0100
    return struct.pack("!HHHHHH", qid, 0x8000 | opcode_bits | rd | (int(rcode) & 0xF), 0, 0, 0, 0)


class DnsServer:
    """The asyncio server; ``async with DnsServer(zone) as srv: srv.port``.

    ``clock`` gives the virtual time used to decide which ``faults`` are
    active (a wire-mode run passes the engine's clock); without it faults are
    judged at time 0, the start of the run.
    """

    def __init__(
        self,
        zone: Zone,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: Sequence[Fault] = (),
        seed: int = 0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError as e:
            raise ValueError(f"DNS server host must be a loopback IP address, got {host!r}") from e
        if not addr.is_loopback:
            raise ValueError(f"DNS server only binds loopback addresses, got {host!r}")
        self.zone = zone
        self.host = host
        self.requested_port = port
        self.port = 0
        self.faults = tuple(faults)
        self.seed = seed
        self.clock = clock
        self.stats: dict[str, int] = {
            "udp": 0,
            "tcp": 0,
            "answered": 0,
            "truncated": 0,
            "no_reply": 0,
            "formerr": 0,
            "dropped": 0,
        }
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    # --- answering (pure: bytes in, bytes or None out) ------------------------------------

    def handle(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The reply to one packet, or None to stay silent; never raises."""
        try:
            return self._handle(wire, tcp=tcp)
        except Exception:  # a bug must not take the server down; the client sees SERVFAIL
            log.exception("DNS server failed on a packet")
            if len(wire) >= 12 and not wire[2] & 0x80:
                return _header_only(wire, dns.rcode.SERVFAIL)
            return None

    def _handle(self, wire: bytes, *, tcp: bool) -> bytes | None:
        if len(wire) < 12 or wire[2] & 0x80:
            self.stats["dropped"] += 1
            return None  # no header to answer, or a response: replying could loop
        try:
            query = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            self.stats["dropped"] += 1
            return None
        except Exception:
            self.stats["formerr"] += 1
            return _header_only(wire, dns.rcode.FORMERR)
        if query.opcode() != dns.opcode.QUERY:
            return self._error(query, dns.rcode.NOTIMP)
        if len(query.question) != 1:
            self.stats["formerr"] += 1
            return self._error(query, dns.rcode.FORMERR)
        question = query.question[0]
        if question.rdclass not in (IN, dns.rdataclass.ANY):
            return self._error(query, dns.rcode.REFUSED)
        if question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self._error(query, dns.rcode.REFUSED)
        qname = name_to_text(question.name)
        qtype = dns.rdatatype.to_text(question.rdtype)
        now = self.clock() if self.clock is not None else 0
        ans = self.zone.lookup(qname, qtype, now=now, faults=self.faults, seed=self.seed)
        if ans.rcode == TIMEOUT:
            self.stats["no_reply"] += 1
            return None
        if ans.rcode == SERVFAIL:
            return self._error(query, dns.rcode.SERVFAIL)
        resp = dns.message.make_response(query, our_payload=UDP_MAX_LIMIT)
        resp.flags |= dns.flags.AA
        resp.set_rcode(dns.rcode.NXDOMAIN if ans.rcode == NXDOMAIN else dns.rcode.NOERROR)
        for rec in ans.records:
            rrset = resp.find_rrset(
                resp.answer, text_to_name(rec.name), IN, dns.rdatatype.from_text(rec.type), create=True
            )
            rrset.add(_rdata(rec), rec.ttl)
        final_type = dns.rdatatype.from_text(qtype) if qtype != "ANY" else None
        has_final = any(
            rs.rdtype == final_type or final_type is None for rs in resp.answer if rs.rdtype != dns.rdatatype.CNAME
        )
        if not has_final and not (qtype == "CNAME" and resp.answer):
            resp.authority.append(_soa(_apex(ans.final_name), self.zone.version))
        limit = TCP_LIMIT if tcp else self._udp_limit(query)
        try:
            out = resp.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            self.stats["truncated"] += 1
            short = dns.message.make_response(query, our_payload=UDP_MAX_LIMIT)
            short.flags |= dns.flags.AA | dns.flags.TC
            short.set_rcode(resp.rcode())
            return short.to_wire(max_size=limit, want_shuffle=False)
        self.stats["answered"] += 1
        return out

    @staticmethod
    def _udp_limit(query: dns.message.Message) -> int:
        if query.edns >= 0:
            return max(UDP_DEFAULT_LIMIT, min(query.payload, UDP_MAX_LIMIT))
        return UDP_DEFAULT_LIMIT

    @staticmethod
    def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
        resp = dns.message.make_response(query, our_payload=UDP_MAX_LIMIT)
        resp.set_rcode(rcode)
        return resp.to_wire(want_shuffle=False)

    # --- sockets ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        attempts = 20 if self.requested_port == 0 else 1
        for _ in range(attempts):
            transport, _proto = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.requested_port)
            )
            port = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as e:  # the UDP port's TCP twin is taken: pick another pair
                transport.close()
                last = e
                continue
            self._udp = transport
            self.port = port
            return
        assert last is not None
        raise last

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for w in list(self._conns):
                w.close()
            await self._tcp.wait_closed()
            self._tcp = None
        for w in list(self._conns):
            with contextlib.suppress(Exception):
                await w.wait_closed()
        self._conns.clear()

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A handler cancelled at shutdown must still end normally: Python 3.11's streams
        # callback calls task.exception() and logs a CancelledError traceback otherwise.
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve_tcp_conn(reader, writer)

    async def _serve_tcp_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                    (length,) = struct.unpack("!H", head)
                    wire = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                self.stats["tcp"] += 1
                reply = self.handle(wire, tcp=True)
                if reply is None:
                    continue
                writer.write(struct.pack("!H", len(reply)) + reply)
                try:
                    await writer.drain()
                except ConnectionError:
                    return
        finally:
            self._conns.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.server.stats["udp"] += 1
        reply = self.server.handle(data, tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from a client gone away
        log.debug("DNS UDP error: %s", exc)


class DnsServerThread:
    """The same server on its own event loop thread, for synchronous callers.

    ``start()`` returns once both sockets are bound (so ``port`` is usable) and
    re-raises a bind failure; ``stop()`` closes everything and joins.
    """

    def __init__(
        self,
        zone: Zone,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: Sequence[Fault] = (),
        seed: int = 0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.server = DnsServer(zone, host, port, faults=faults, seed=seed, clock=clock)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> DnsServerThread:
        if self._thread is not None:
            raise RuntimeError("DNS server thread already started")
        self._thread = threading.Thread(target=self._run, name="mailsim-dns", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already finished
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> DnsServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
