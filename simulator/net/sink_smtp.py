"""aiosmtpd's SMTP protocol as the sink speaks it: greeting by the receiver, RFC 3463 codes on
every reply, DSN parameters, pipelined replies written together."""

from __future__ import annotations

import asyncio
import builtins
import collections
import functools
import inspect
import itertools
import re
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, AnyStr, Protocol

import aiosmtpd.smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP, Session

from simulator.net.proxy import PROXY_MAIL_LINE_LIMIT, XMAILSIM
from simulator.net.receiver import (
    Reply,
    Transaction,
)


class ConnectionHooks(Protocol):
    """What the protocol needs from its handler beyond aiosmtpd's hooks (the greeting, the registry)."""

    connections: set[SinkSMTP]

    async def on_connect(self, server: SinkSMTP) -> Reply | None: ...

    def on_close(self, server: SinkSMTP) -> None: ...

IDENT = "ESMTP mailsim"
_CONNECTIONS = itertools.count(1)
BARE_CR_LF = "501 5.5.2 Syntax error: CR, LF or NUL inside a command"

# a plain reverse-/forward-path and what follows it: "<local@domain> PARAMS"
_PLAIN_PATH = re.compile(r"<([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
                         r"(?:[ \t]+(?![ \t(])|\Z)(.*)\Z", re.DOTALL)
_ENHANCED_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(?: |$)")
_DEFAULT_ENHANCED: dict[int, str] = {
    500: "5.5.2", 501: "5.5.4", 502: "5.5.1", 503: "5.5.1", 504: "5.5.4", 552: "5.3.4", 553: "5.1.3",
    555: "5.5.4", 421: "4.3.0",
}
DSN_MAIL_PARAMS = frozenset({"RET", "ENVID"})
DSN_RCPT_PARAMS = frozenset({"NOTIFY", "ORCPT"})
NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def reply_line(r: Reply) -> str:
    """A receiver ``Reply`` as the SMTP line the client sees."""
    return f"{r.code} {r.enhanced} {r.text}" if r.enhanced else f"{r.code} {r.text}"


def with_enhanced(line: str) -> str:
    """Add an RFC 3463 code to a reply line that lacks one (aiosmtpd's built-in replies)."""
    code_s, sep, text = line.partition(" ")
    if not (len(code_s) == 3 and code_s.isdigit()) or _ENHANCED_RE.match(text):
        return line
    code = int(code_s)
    if code == 500 and "not recognized" in text:
        enh = "5.5.1"
    else:
        enh = _DEFAULT_ENHANCED.get(code, f"{code // 100}.0.0")
    return f"{code_s} {enh} {text}" if sep else f"{code_s} {enh}"



class SinkSession(Session):
    """aiosmtpd's session plus the receiver's transaction and the PROXY context."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.tx: Transaction | None = None
        self.proxied = False
        self.kind = "msg"
        self.token = ""
        self.conn_id = ""
        self.owner = next(_CONNECTIONS)  # the connection its session records belong to
        self.delay_seen = 0
        self.declared_size: int | None = None


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP with the greeting decided by the receiver, enhanced codes, DSN params."""

    def __init__(self, handler: ConnectionHooks, *, proxy: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink_handler = handler
        self.proxy = proxy  # the PROXY listener: XMAILSIM is advertised and accepted
        self._greeted = False
        self._dropped = False
        self._out: list[bytes] = []  # replies not written yet (pipelined commands pending)
        self._raw_ok = False  # inside EHLO/HELO: 2xx lines go out unchanged (RFC 2034)
        # aiosmtpd keeps these limits in one dict shared by every connection (and grows MAIL's
        # on each EHLO); give each connection its own, with room for XMAILSIM on the PROXY listener.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        if proxy:
            self.command_size_limits["MAIL"] = PROXY_MAIL_LINE_LIMIT

    @property
    def dropped(self) -> bool:
        """The connection was dropped (a fault): later pipelined commands must not reach the receiver."""
        return self._dropped or self.transport is None

    def _create_session(self) -> Session:
        return SinkSession(self.loop)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every address with the email package's RFC 5322 parser (and defines
        # a typing.Protocol class per call); a plain <local@domain> gets the same answer here.
        m = _PLAIN_PATH.match(arg) if arg else None
        if m is None:
            return super()._getaddr(arg)
        addr = m.group(1)
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, m.group(2)

    async def _push_line(self, line: str) -> None:
        """Write a reply; replies to pipelined commands go out together (RFC 2920 §3.2).

        A reply waits only while another complete command is already buffered (its reply
        follows at once); a closing reply (221/421) or the last pending one flushes.
        """
        data = line.encode("utf-8" if self.enable_SMTPUTF8 else "ascii", "surrogateescape") + b"\r\n"
        self._out.append(data)
        buffered = getattr(self._reader, "_buffer", None)
        if (isinstance(buffered, bytearray) and b"\n" in buffered and line[:3] not in ("221", "421", "502")
                and self.transport is not None and not self.transport.is_closing()):
            return
        self.flush_replies()
        assert self._writer is not None
        await self._writer.drain()

    def flush_replies(self) -> None:
        if self._out:
            out, self._out = b"".join(self._out), []
            if self.transport is not None and not self.transport.is_closing():
                assert self._writer is not None
                self._writer.write(out)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sink_handler.connections.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink_handler.connections.discard(self)
        self.sink_handler.on_close(self)
        super().connection_lost(error)

    def drop(self) -> None:
        """Close the connection without a reply (a ``disconnect`` fault)."""
        self.flush_replies()  # the replies before the drop still go out
        self._dropped = True
        if self.transport is not None:
            self.transport.close()

    def _getparams(self, params: Any) -> Any:
        # aiosmtpd answers 555 to any parameter it does not know; the DSN ones are
        # validated by the handler's hooks instead.
        result = super()._getparams(params)
        if result is not None:
            for key in DSN_MAIL_PARAMS | DSN_RCPT_PARAMS:
                result.pop(key, None)
            if self.proxy:
                result.pop(XMAILSIM, None)
        return result

    async def smtp_EHLO(self, hostname: str) -> None:
        self._raw_ok = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._raw_ok = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._raw_ok = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._raw_ok = False

    async def push(self, status: AnyStr) -> None:
        if self._dropped:
            return
        line = status.decode("utf-8", "surrogateescape") if isinstance(status, bytes) else str(status)
        if "\r" in line or "\n" in line:  # one reply, one line: nothing a client wrote may start another
            line = " ".join(line.splitlines())
        if not self._greeted:
            self._greeted = True
            reply = await self.sink_handler.on_connect(self)
            if reply is not None:
                if reply.code == 0:
                    self.drop()
                    return
                await super().push(reply_line(reply))
                if self.transport is not None:
                    self.transport.close()
                self._dropped = True
                return
            await super().push(line)
            return
        if not (line.startswith("354") or (self._raw_ok and line[:1] == "2")):
            line = with_enhanced(line)
        await self._push_line(line)



def _guarded(method: Callable[[SinkSMTP, str | None], Awaitable[None]],
             ) -> Callable[[SinkSMTP, str | None], Awaitable[None]]:
    """``method`` refusing an argument that holds a CR, LF or NUL (501).

    aiosmtpd ends a line at LF and keeps a bare CR (or NUL) inside the argument; such a value could
    start a header of its own where it is written down. Wrapped once per class (``functools.wraps``
    keeps the ``HELP`` syntax aiosmtpd reads off each method), not per connection.
    """

    @functools.wraps(method)
    async def run(self: SinkSMTP, arg: str | None) -> None:
        if arg and ("\r" in arg or "\n" in arg or "\x00" in arg):
            await self.push(BARE_CR_LF)
            return
        await method(self, arg)

    return run


for _name in [n for n in dir(SinkSMTP) if n.startswith("smtp_")]:
    setattr(SinkSMTP, _name, _guarded(getattr(SinkSMTP, _name)))


class _HookTables:
    """Stands in for the ``inspect`` module inside ``aiosmtpd.smtp``; remembers per class what it finds.

    aiosmtpd's ``SMTP.__init__`` runs for every connection and rebuilds its hook tables with
    ``inspect.getmembers`` of the protocol object and of the handler (evaluating every attribute,
    properties included) and ``inspect.signature`` of ``handle_EHLO``: a quarter of the sink's CPU
    under ``smtp-source -s 10``, a connection per message. The answer depends only on the classes,
    so for the sink's own classes the ``auth_*`` names and the EHLO signature are looked up once;
    any other object (another aiosmtpd server in the process) gets ``inspect`` itself. aiosmtpd
    reads nothing but ``auth_*`` members from ``getmembers`` (checked by ``tests/test_sink.py``).
    """

    def __init__(self) -> None:
        self._names: dict[type, list[str]] = {}
        self._signatures: dict[object, inspect.Signature] = {}
        self._hooks: dict[type, list[str]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    def getmembers(self, obj: object) -> list[tuple[str, Any]]:
        cls = type(obj)
        if not issubclass(cls, (SinkSMTP, *_OWN_HANDLERS)):
            return inspect.getmembers(obj)
        names = self._names.get(cls)
        if names is None:
            names = self._names[cls] = [n for n, _ in inspect.getmembers(obj) if n.startswith("auth_")]
        return [(n, getattr(obj, n)) for n in names]

    def dir(self, obj: object) -> list[str]:
        """``dir()`` as ``aiosmtpd.smtp`` uses it: the names its ``SMTP.__init__`` keeps (``smtp_*``, ``handle_*``).

        For the protocol object and the handler, per connection, it keeps only the names with those
        prefixes of ``dir()``'s ≈135 and ≈50: the full ``dir()`` and the scan were 13 % of the sink's
        event loop under ``smtp-source -s 10`` (a connection per message). The class's names are
        found once; the instance's own attributes are looked at every time, as ``dir()`` would.
        """
        cls = type(obj)
        if not issubclass(cls, (SinkSMTP, *_OWN_HANDLERS)):
            return builtins.dir(obj)
        names = self._hooks.get(cls)
        if names is None:
            names = self._hooks[cls] = [n for n in builtins.dir(cls) if n.startswith(_DIR_PREFIXES)]
        own = [n for n in getattr(obj, "__dict__", ()) if n.startswith(_DIR_PREFIXES) and n not in names]
        return sorted([*names, *own]) if own else names

    def signature(self, fn: Any) -> inspect.Signature:
        key = getattr(fn, "__func__", None)
        if key is None or not isinstance(getattr(fn, "__self__", None), _OWN_HANDLERS):
            return inspect.signature(fn)
        sig = self._signatures.get(key)
        if sig is None:
            sig = self._signatures[key] = inspect.signature(fn)
        return sig


_OWN_HANDLERS: tuple[type, ...] = ()


def register_handler_class(cls: type) -> None:
    """Let aiosmtpd's per-connection hook lookup for handlers of ``cls`` be remembered (see _HookTables)."""
    global _OWN_HANDLERS
    if cls not in _OWN_HANDLERS:
        _OWN_HANDLERS = (*_OWN_HANDLERS, cls)


_DIR_PREFIXES = ("smtp_", "handle_")

if isinstance(getattr(aiosmtpd_smtp, "inspect", None), ModuleType):
    _TABLES = _HookTables()
    aiosmtpd_smtp.inspect = _TABLES  # type: ignore[assignment]
    aiosmtpd_smtp.dir = _TABLES.dir  # type: ignore[attr-defined]  # a module global shadows the builtin there
