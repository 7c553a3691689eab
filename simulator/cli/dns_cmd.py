"""``mailsim dns serve``: a scenario's DNS on a loopback port, for dig or a real MTA.

Trainers and support engineers point outside tools at it to see exactly the
answers the simulator's SPF and MX logic see. It serves until interrupted;
Ctrl-C (or SIGTERM) closes the sockets and exits 0. Scenario faults are not
applied (there is no run clock here); ``dns.unreachable`` names never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.common import fail, load_or_exit
from simulator.net.dns_server import DnsServer
from simulator.net.zone import Zone

app = typer.Typer(
    help="Serve a scenario's DNS on loopback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Serve a scenario's DNS (its ``dns:`` section) on loopback."""


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
