"""``mailsim sink``: the SMTP sink standalone, for swaks, smtplib, smtp-source or a real MTA.

Prints the listening addresses, serves until Ctrl-C (or SIGTERM), then prints
the JSON summary of what it stored. Exit 2 with ``file:line:col: message`` for
a bad ``--scenario``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import resource
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import orjson
import typer

from simulator.cli.common import directory, fail, load_or_exit, output_file, positive
from simulator.cli.common import port as check_port
from simulator.net.sink import Sink

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@app.callback(invoke_without_command=True)
def sink(
    host: Annotated[str, typer.Option(help="Loopback address to bind (both listeners).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Plain SMTP port for ordinary clients (0: any free port).")] = 0,
    proxy_port: Annotated[int, typer.Option(help="PROXY-protocol v2 port for mailsim's own MTA (0: any).")] = 0,
    maildir: Annotated[Path | None, typer.Option(help="Store messages here (default: a new temp directory).")] = None,
    scenario: Annotated[Path | None, typer.Option(help="Apply this file's mailboxes:, faults: and dns: (SPF).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds an idle client may stall before it is hung up on.")] = 300.0,
    max_recipients: Annotated[int, typer.Option(
        help="Recipients one message may have on the plain listener (at least 100); 452 4.5.3 past it.")] = 100,
    proxy_secret_file: Annotated[Path | None, typer.Option(
        help="Write the PROXY listener's secret here (mode 0600; default: a new private temp folder).")] = None,
    verbose: Annotated[bool, typer.Option(help="Log every SMTP session (aiosmtpd's log).")] = False,
) -> None:
    """Run the SMTP sink until Ctrl-C; print the JSON summary of what it stored."""
    port, proxy_port = check_port(port, "--port"), check_port(proxy_port, "--proxy-port")
    timeout = positive(timeout, "--timeout")
    if max_recipients < 100:
        raise fail(f"--max-recipients must be at least 100 (RFC 5321 §4.5.3.1.8), got {max_recipients}")
    if maildir is not None:
        directory(maildir, "--maildir")
    if proxy_secret_file is not None:
        output_file(proxy_secret_file, "--proxy-secret-file")
    scn = load_or_exit(scenario) if scenario is not None else None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise fail(f"--host must be a loopback address (127.0.0.1 or ::1), got {host!r}")
    logging.getLogger("mail.log").setLevel(logging.INFO if verbose else logging.ERROR)
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    box = maildir if maildir is not None else Path(tempfile.mkdtemp(prefix="mailsim-sink-"))
    try:
        box.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--maildir {box}: {exc.strerror or exc}") from None
    _raise_fd_limit()  # a thousand idle clients are a thousand descriptors
    try:
        s = Sink(scn, box, host=host, port=port, proxy_port=proxy_port, timeout=timeout,
                 max_recipients=max_recipients).start()
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {host}: {exc}\n")
        raise typer.Exit(2) from None
    secret_path = _write_secret(s.proxy_secret, proxy_secret_file)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _say(f"mailsim sink: SMTP  {host}:{s.port}  (plain: swaks, smtplib, smtp-source)")
        _say(f"mailsim sink: PROXY {host}:{s.proxy_port}  (signed PROXY v2 header first: mailsim's own MTA)")
        _say(f"mailsim sink: PROXY secret {secret_path}  (readable by you only)")
        _say(f"mailsim sink: Maildir {box}")
        _say("mailsim sink: Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        s.stop()
    _say(orjson.dumps(s.summary(), option=orjson.OPT_INDENT_2).decode())


def _write_secret(secret: bytes, path: Path | None) -> Path:
    """The PROXY secret in a file only this user can read (the sink's own MTA clients sign with it)."""
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="mailsim-sink-secret-")) / "proxy-secret"  # the folder is 0700
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret)
    finally:
        os.close(fd)
    return path


def _raise_fd_limit() -> None:
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":  # pragma: no cover - ``python -m simulator.cli.sink_cmd``
    app()
