"""The PROXY listener's wire codecs: the PROXY v2 header with the simulator's TLVs, and the
per-transaction context carried by ``MAIL FROM:<...> XMAILSIM=<hex JSON>`` (docs/sink.md)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import struct
from dataclasses import dataclass

from aiosmtpd.proxy_protocol import ProxyData

# PROXY v2 TLV types in the application range (0xE0-0xEF) carrying the simulator's context.
TLV_MESSAGE_ID = 0xE0
TLV_ATTEMPT = 0xE1
TLV_NOW = 0xE2
TLV_DOMAIN = 0xE3
TLV_KIND = 0xE4  # b"msg" | b"dsn"
TLV_TOKEN = 0xE5  # opaque key of the session record the wire transport reads back
TLV_AUTH = 0xE6  # HMAC-SHA256 of the addresses and the TLVs above, keyed by the sink's per-start secret
CONTEXT_TLVS = (TLV_MESSAGE_ID, TLV_ATTEMPT, TLV_NOW, TLV_DOMAIN, TLV_KIND, TLV_TOKEN)
SECRET_BYTES = 32
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# ESMTP keyword and MAIL FROM parameter of the PROXY listener: the per-transaction context.
XMAILSIM = "XMAILSIM"
# A MAIL FROM line may be this long on the PROXY listener (aiosmtpd reads at most 1001 bytes a line).
PROXY_MAIL_LINE_LIMIT = 998


def proxy_header(
    client_ip: str,
    server_ip: str = "",
    *,
    message_id: str = "",
    attempt: int = 1,
    now: int = 0,
    domain: str = "",
    kind: str = "msg",
    token: str = "",
    client_port: int = 25000,
    server_port: int = 25,
    secret: bytes = b"",
) -> bytes:
    """A PROXY protocol v2 header (TCP, ``PROXY`` command) with the simulator's TLVs.

    ``server_ip`` is the MX address the engine resolved; when it is missing or
    of the other family, the unspecified address of the client's family is sent.
    ``secret`` (the sink's :attr:`~simulator.net.sink.Sink.proxy_secret`) signs the
    header (:data:`TLV_AUTH`): the sink refuses a header it cannot verify.
    """
    src = ipaddress.ip_address(client_ip)
    try:
        dst: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(server_ip)
    except ValueError:
        dst = ipaddress.ip_address("0.0.0.0" if src.version == 4 else "::")
    if dst.version != src.version:
        dst = ipaddress.ip_address("0.0.0.0" if src.version == 4 else "::")
    fam = 0x11 if src.version == 4 else 0x21  # AF_INET|STREAM, AF_INET6|STREAM
    addrs = src.packed + dst.packed + struct.pack("!HH", client_port, server_port)
    tlvs = b""
    values: list[bytes] = []
    for typ, val in zip(CONTEXT_TLVS, (message_id, str(attempt), str(now), domain, kind, token), strict=True):
        raw = val.encode("utf-8", "surrogateescape")
        values.append(raw)
        tlvs += struct.pack("!BH", typ, len(raw)) + raw
    if secret:
        tag = auth_tag(secret, str(src), str(dst), values)
        tlvs += struct.pack("!BH", TLV_AUTH, len(tag)) + tag
    body = addrs + tlvs
    return PROXY_V2_SIGNATURE + struct.pack("!BBH", 0x21, fam, len(body)) + body


def auth_tag(secret: bytes, src: str, dst: str, values: list[bytes]) -> bytes:
    """HMAC-SHA256 over the addresses and the context TLVs' values, each length-prefixed."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for part in (src.encode(), dst.encode(), *values):
        mac.update(struct.pack("!I", len(part)) + part)
    return mac.digest()


def verify_header(proxy_data: ProxyData, secret: bytes) -> bool:
    """Is this a PROXY v2 header signed with ``secret``? (v1 text headers carry no TLV: refused.)"""
    if proxy_data.version != 2 or proxy_data.src_addr is None or not secret:
        return False
    tag = tlv_bytes(proxy_data, TLV_AUTH)
    if tag is None:
        return False
    values = [tlv_bytes(proxy_data, typ) or b"" for typ in CONTEXT_TLVS]
    want = auth_tag(secret, str(proxy_data.src_addr), str(proxy_data.dst_addr), values)
    return hmac.compare_digest(tag, want)


@dataclass(frozen=True, slots=True)
class MailContext:
    """The simulator's per-transaction context, carried by ``MAIL FROM:<...> XMAILSIM=<value>``."""

    message_id: str
    attempt: int = 1
    now: int = 0
    domain: str = ""
    kind: str = "msg"  # "msg" | "dsn"
    token: str = ""


def xmailsim_value(ctx: MailContext) -> str:
    """The ``XMAILSIM`` parameter's value: the context as compact JSON (UTF-8), in hex.

    Hex because aiosmtpd upper-cases MAIL parameters and an esmtp-value may not hold
    ``=`` or spaces (RFC 5321 §4.1.2).
    """
    raw = json.dumps([ctx.message_id, ctx.attempt, ctx.now, ctx.domain, ctx.kind, ctx.token],
                     separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogateescape")
    return raw.hex().upper()


def parse_xmailsim(value: str) -> MailContext:
    """Decode an ``XMAILSIM`` value (any case); ValueError when it is not one."""
    try:
        raw = bytes.fromhex(value.strip())
        items = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"bad XMAILSIM value: {e}") from None
    if not (isinstance(items, list) and len(items) == 6):
        raise ValueError("bad XMAILSIM value: not a 6-item list")
    mid, attempt, now, domain, kind, token = items
    if not (isinstance(mid, str) and isinstance(domain, str) and isinstance(token, str)
            and type(attempt) is int and type(now) is int and kind in ("msg", "dsn")):
        raise ValueError("bad XMAILSIM value: wrong field types")
    return MailContext(mid, attempt, now, domain, kind, token)


def tlv_bytes(proxy_data: ProxyData, typ: int) -> bytes | None:
    """The raw value of TLV ``typ`` in a parsed PROXY v2 header, None when absent."""
    tlv = proxy_data.tlv
    if tlv is None:
        return None
    raw = tlv.get(f"x{typ:02X}")
    return None if raw is None else bytes(raw)


def tlv_text(proxy_data: ProxyData, typ: int) -> str | None:
    raw = tlv_bytes(proxy_data, typ)
    return None if raw is None else raw.decode("utf-8", "surrogateescape")
