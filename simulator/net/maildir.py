"""Maildir storage shared by the sink and ``mailsim run --maildir``: one layout, one writer."""

from __future__ import annotations

import email.parser
import email.policy
import os
import threading
from dataclasses import dataclass
from email.message import Message
from hashlib import blake2b
from pathlib import Path

DEFAULT_HOSTNAME = "mx.mailsim.test"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One file the sink wrote: a message for one recipient, in one folder."""

    recipient: str
    folder: str  # "inbox" | "junk" | "bounce" (bounces are files in the inbox's new/)
    path: Path
    message_id: str
    mail_from: str
    client_ip: str
    helo: str
    spf: str | None  # the receiver's SPF result (None for a bounce)
    now: int  # the sink's clock when it was stored (virtual for the simulator's MTA)
    size: int

    def read(self) -> bytes:
        return self.path.read_bytes()

    def message(self) -> Message:
        return email.parser.BytesParser(policy=email.policy.default).parsebytes(self.read())


def mailbox_dirname(address: str) -> str:
    """A recipient address as one safe directory name (lower-case, no path separators)."""
    name = address.strip().lower()
    name = "".join("_" if c in "/\\\x00" or ord(c) < 32 else c for c in name)
    if not name or name.startswith("."):
        name = "_" + name
    return name[:200]


def stored_copy(content: bytes, *, sender: str, recipient: str, header: str = "") -> bytes:
    """One stored copy as the sink writes it (and ``mailsim run --maildir`` in memory mode).

    ``content`` is the message as DATA carried it (CRLF line ends); the file gets Return-Path,
    Delivered-To and the receiver's ``header`` line (Received-SPF; none for a DSN), LF line ends.
    """
    lines = [f"Return-Path: <{sender}>", f"Delivered-To: {recipient}"]
    if header:
        lines.append(header)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape") + content.replace(b"\r\n", b"\n")


class Maildir:
    """Writes messages Maildir style: ``tmp/`` then an atomic rename into ``new/``.

    No fsync: a message is durable once the kernel has it (the sink is a test
    double, not a mail store). Names are unique within the directory: the names
    already in ``new/`` are read once per folder, and a name is never reused; a
    clash with a file another writer made meanwhile in ``tmp/`` is caught by
    ``O_EXCL``. Threads may deliver at once (names are reserved under a lock,
    files are written outside it); one process per Maildir.
    """

    def __init__(self, root: Path, hostname: str = DEFAULT_HOSTNAME) -> None:
        self.root = root
        self.hostname = hostname.replace("/", "_").replace(":", "_")
        self._names: dict[str, set[str]] = {}  # folder dir -> names taken in new/ and tmp/
        self._lock = threading.Lock()

    def folder_dir(self, recipient: str, folder: str) -> Path:
        base = self.root / mailbox_dirname(recipient)
        return base / ".Junk" if folder == "junk" else base

    def _taken(self, d: str) -> set[str]:
        names = self._names.get(d)
        if names is None:
            # a folder (.Junk) lives inside its mailbox's Maildir: the mailbox must be one too, or a reader
            # (mutt -f DIR/ADDRESS, Python's mailbox.Maildir) cannot open an address that only has junk
            for where in (d, os.path.dirname(d)) if os.path.basename(d) == ".Junk" else (d,):
                for sub in ("tmp", "new", "cur"):
                    os.makedirs(os.path.join(where, sub), exist_ok=True)
            names = set(os.listdir(os.path.join(d, "new"))) | set(os.listdir(os.path.join(d, "tmp")))
            self._names[d] = names
        return names

    def deliver(self, recipient: str, folder: str, message_id: str, now: int, data: bytes) -> Path:
        d = str(self.folder_dir(recipient, folder))
        digest = blake2b(f"{message_id}\x00{recipient.lower()}".encode("utf-8", "surrogateescape"),
                         digest_size=8).hexdigest()
        stem = f"{now}.M{digest}"
        name = f"{stem}.{self.hostname}"
        n = 1
        while True:
            with self._lock:
                taken = self._taken(d)
                while name in taken:
                    n += 1
                    name = f"{stem}_{n}.{self.hostname}"
                taken.add(name)
            tmp = f"{d}/tmp/{name}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileExistsError:
                continue
            break
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        final = f"{d}/new/{name}"
        os.rename(tmp, final)
        return Path(final)

