"""``mailsim dns serve`` and ``mailsim dns snapshot``: a scenario's DNS out, real DNS in.

``serve``: trainers and support engineers point outside tools at it to see
exactly the answers the simulator's SPF and MX logic see. It serves until
interrupted; Ctrl-C (or SIGTERM) closes the sockets and exits 0. Scenario faults
are not applied (there is no run clock here); ``dns.unreachable`` names never
answer.

``snapshot``: the reverse direction — a customer's real SPF and MX records,
asked from a DNS server, written as a ``mailsim/1`` file to reproduce the case
with (see ``simulator.net.snapshot``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import dns.exception
import dns.name
import typer

from simulator.cli.common import fail, load_or_exit
from simulator.net.dns_server import DnsServer
from simulator.net.zone import Zone

app = typer.Typer(
    help="Serve a scenario's DNS on loopback, or capture real DNS into a scenario.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Serve a scenario's DNS (its ``dns:`` section) on loopback, or snapshot real DNS into one."""


async def _serve(zone: Zone, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread / platform
            loop.add_signal_handler(sig, stop.set)
    async with DnsServer(zone, host, port) as srv:
        shown = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
        typer.echo(f"listening on {shown}:{srv.port} udp+tcp")
        await stop.wait()
    typer.echo("stopped")


@app.command()
def serve(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML) whose dns: is served.")],
    host: Annotated[str, typer.Option(help="Loopback address to bind (127.0.0.1 or ::1).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for UDP and TCP; 0 lets the OS choose.")] = 0,
) -> None:
    """Answer DNS queries for FILE's records until interrupted."""
    scn = load_or_exit(file)
    if not 0 <= port <= 65535:
        raise fail(f"--port must be 0..65535, got {port}")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError
    except ValueError:
        raise fail(f"--host must be a loopback address (127.0.0.1 or ::1), got {host!r}") from None
    try:
        zone = Zone.from_scenario(scn)
    except ValueError as e:
        raise fail(f"{file}: {e}") from None
    try:
        asyncio.run(_serve(zone, host, port))
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed
        pass
    except OSError as e:
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


@app.command()
def snapshot(
    names: Annotated[
        list[str],
        typer.Argument(metavar="NAME", help="Domain names to capture (e.g. the customer's sending domain)."),
    ],
    server: Annotated[
        str | None,
        typer.Option("--server", help="DNS server to ask, IP[:PORT] or [IPv6]:PORT (default: the system resolver)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the scenario here (default: standard output).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for one answer.")] = 2.0,
    ip: Annotated[
        list[str] | None,
        typer.Option(
            "--ip", help="A client IP the snapshot must serve checks for (repeatable): follows ptr and %{i} for it."
        ),
    ] = None,
) -> None:
    """Capture the DNS that SPF and delivery of NAME need into a mailsim/1 scenario file."""
    from simulator.domain.dns import DnsTextError, canonical_name, display
    from simulator.net.snapshot import make_resolver, name_list, parse_server, render, take

    wanted: list[str] = []
    for n in names:
        try:
            if not n.isascii():  # an internationalised domain is asked for by its A-labels, as mail routes it
                n = dns.name.from_unicode(n, idna_codec=dns.name.IDNA_2008_Practical).to_text(omit_final_dot=True)
            wanted.append(canonical_name(n))
        except (DnsTextError, dns.exception.DNSException, UnicodeError) as e:
            raise fail(f"NAME {display(n)!r}: {e}") from None
    ips: list[str] = []
    for text in ip or []:
        try:
            ips.append(str(ipaddress.ip_address(text.strip())))
        except ValueError:
            raise fail(f"--ip: {display(text)!r} is not an IPv4 or IPv6 address") from None
    if not 0.05 <= timeout <= 60:
        raise fail(f"--timeout must be 0.05..60 seconds, got {timeout:g}")
    try:
        where = parse_server(server) if server is not None else None
    except ValueError as e:
        raise fail(f"--server: {e}") from None
    try:
        resolver = make_resolver(where, timeout)
    except Exception as e:  # dnspython: no /etc/resolv.conf, no nameservers in it
        raise fail(f"no system resolver to ask ({e}); name one with --server") from None
    label = "the system resolver" if where is None else (
        f"[{where[0]}]:{where[1]}" if ":" in where[0] else f"{where[0]}:{where[1]}"
    )
    taken_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    text = render(take(name_list(wanted), resolver, label, name_list(ips)), taken_at)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise fail(f"--out {out}: {e.strerror or e}") from None
    typer.echo(f"wrote {out}")
