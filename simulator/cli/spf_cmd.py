"""``mailsim spf check``: what a receiver's RFC 7208 check says about one connection.

Support engineers use it to answer "would this IP be allowed to send as this
address, with the DNS in this scenario?" without running the whole scenario.
The SPF result is the output, not a failure: the exit status is 0 whatever
the result, and 2 only for bad input (scenario error, malformed --ip).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.common import fail, load_or_exit
from simulator.domain.dns import display
from simulator.net.resolver import MemoryResolver, Resolver, WireResolver
from simulator.net.spf import DEFAULT_RECEIVER, SpfResult, check_mail_from
from simulator.net.zone import Zone

app = typer.Typer(
    help="RFC 7208 SPF checks against a scenario's DNS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """RFC 7208 SPF checks against a scenario's DNS (its ``dns:`` section)."""


DEFAULT_TIMEOUT = 2.0


def evaluate(
    zone: Zone,
    ip: str,
    sender: str,
    helo: str,
    *,
    wire: bool,
    receiver: str = DEFAULT_RECEIVER,
    timeout: float = DEFAULT_TIMEOUT,
) -> SpfResult:
    """What ``spf check`` computes: in memory, or through a loopback server started for the call.

    ``timeout`` is how long one unanswered DNS question may take over the wire
    before it is a temperror (an ``unreachable`` name always costs that much).
    """
    if not wire:
        return check_mail_from(ip, sender, helo, MemoryResolver(zone), receiver=receiver)
    from simulator.net.dns_server import DnsServerThread

    with DnsServerThread(zone) as srv:
        resolver: Resolver = WireResolver(srv.host, srv.port, timeout=timeout)
        return check_mail_from(ip, sender, helo, resolver, receiver=receiver)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="Scenario file (mailsim/1 YAML) whose dns: is used.")],
    ip: Annotated[str, typer.Option("--ip", help="The connecting client's IP address.")],
    sender: Annotated[str, typer.Option("--sender", help="MAIL FROM address; '' or '<>' checks postmaster@HELO.")],
    helo: Annotated[
        str | None, typer.Option("--helo", help="HELO/EHLO name (default: the scenario's platform helo).")
    ] = None,
    wire: Annotated[
        bool, typer.Option("--wire", help="Serve the zone on a loopback DNS server and resolve over UDP/TCP.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    receiver: Annotated[str, typer.Option(help="Receiving host name, for the %{r} macro.")] = DEFAULT_RECEIVER,
    timeout: Annotated[
        float, typer.Option("--timeout", help="With --wire: seconds before an unanswered DNS question is temperror.")
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Evaluate SPF for IP sending as SENDER, against FILE's DNS records."""
    try:
        ipaddress.ip_address(ip.strip())
    except ValueError:
        raise fail(f"--ip: {ip!r} is not an IPv4 or IPv6 address") from None
    if not 0.05 <= timeout <= 60:
        raise fail(f"--timeout must be 0.05..60 seconds, got {timeout:g}")
    scn = load_or_exit(file)
    helo_name = helo if helo is not None else scn.platform.helo
    try:
        zone = Zone.from_scenario(scn)
    except ValueError as e:  # the loader validates records; this guards older files
        raise fail(f"{file}: {e}") from None
    res = evaluate(zone, ip, sender, helo_name, wire=wire, receiver=receiver, timeout=timeout)
    if json_out:
        doc = res.to_dict()
        doc.update({"ip": ip.strip(), "sender": sender, "helo": helo_name, "transport": "wire" if wire else "memory"})
        typer.echo(json.dumps(doc))
        return
    typer.echo(f"{res.result}: {display(res.explanation)}")  # a raw control byte never reaches the terminal
