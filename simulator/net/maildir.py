"""Maildir storage shared by the sink and ``mailsim run --maildir``: one layout, one writer."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import errno
import os
import stat
import threading
import time
from collections.abc import Sequence
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


# Characters a mailbox folder name may hold as they are: what an address is usually made of.
_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789@.-_+=")
NAME_BYTES = 100  # a folder name kept as written is at most this long (NAME_MAX is 255 bytes)
PREFIX_BYTES = 60  # the readable prefix of a hashed folder name
STALE_TMP_SECONDS = 36 * 3600  # the classic Maildir rule: tmp/ files this old are abandoned
FD_CACHE = 128  # folders whose directory descriptors stay open between deliveries
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def mailbox_dirname(address: str) -> str:
    """A recipient address as one directory name: safe, bounded and collision-free.

    Addresses are compared case-folded (DESIGN §8), so the name is too. An address made only of
    the usual characters (``[a-z0-9@.+=_-]``, not starting with a dot) and at most
    :data:`NAME_BYTES` long is its own name; any other gets a readable prefix (unusual characters
    as ``_``) plus ``~`` and a 64-bit hash of the whole address. Plain names never hold ``~``, so
    the two kinds never meet, and ``a/b``, ``a\b`` and ``a_b`` get three different folders.
    """
    name = address.strip().lower()
    if name and name[0] != "." and len(name) <= NAME_BYTES and all(c in _SAFE_CHARS for c in name):
        return name
    raw = name.encode("utf-8", "surrogateescape")
    digest = blake2b(raw, digest_size=8).hexdigest()
    prefix = "".join(c if c in _SAFE_CHARS else "_" for c in name)[:PREFIX_BYTES].lstrip(".")
    return f"{prefix}~{digest}"


def escape_header_value(value: str) -> str:
    """A client-supplied value made safe for one header line: control characters as ``\\xHH``.

    So a CR, LF or NUL smuggled into HELO, MAIL FROM or RCPT TO can never start a header of
    its own (a forged ``Received-SPF: pass``) in the stored file.
    """
    if all(" " <= c != "\x7f" for c in value):
        return value
    return "".join(c if (" " <= c != "\x7f") or c == "\t" else f"\\x{ord(c):02x}" for c in value)


def stored_head(mail_from: str, received_spf: str = "") -> bytes:
    """The trace headers a stored message starts with: ``Return-Path:`` and ``Received-SPF:``.

    The same bytes for every recipient of the message (the recipient is the folder), which is
    what lets one file be hard-linked into every recipient's Maildir.
    """
    sender = mail_from.strip()
    if sender.startswith("<") and sender.endswith(">"):  # aiosmtpd spells the null sender "<>"
        sender = sender[1:-1]
    lines = [f"Return-Path: <{escape_header_value(sender)}>"]
    if received_spf:
        lines.append(f"Received-SPF: {escape_header_value(received_spf)}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def stored_copy(content: bytes, *, sender: str, recipient: str = "", header: str = "") -> bytes:
    """One stored file as the sink writes it, in one piece (``mailsim run --maildir`` in memory mode).

    ``content`` is the message as DATA carried it (CRLF line ends); ``header`` the receiver's
    ``Received-SPF: …`` line (none for a DSN). The recipient is not written into the file: it is
    the folder, and the same file serves every recipient of the message (hard links).
    """
    return stored_head(sender, header.removeprefix("Received-SPF: ")) + stored_body(content)


def stored_body(content: bytes) -> bytes:
    """The message as stored: LF line ends (Maildir convention)."""
    return content.replace(b"\r\n", b"\n")


class UnsafeMaildir(OSError):
    """A path below the Maildir root is a symbolic link (or not a directory): never followed."""


class _Folder:
    """The open ``tmp/`` and ``new/`` of one Maildir folder, and the names taken there."""

    __slots__ = ("names", "new", "path", "tmp")

    def __init__(self, path: str, tmp: int, new: int, names: set[str]) -> None:
        self.path = path
        self.tmp = tmp
        self.new = new
        self.names = names


def _open_dir(parent: int, name: str) -> int:
    """``name`` below the directory ``parent``, created if missing; a symlink is refused."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeMaildir(e.errno, "a symbolic link or a file where a Maildir folder belongs") from None
        raise


class Maildir:
    """Writes messages Maildir style: ``tmp/`` then an atomic rename into ``new/``.

    Why each rule:

    - one message, one file: :meth:`deliver_all` writes the message once and hard-links it into
      every other recipient's ``tmp/`` (a copy only where the filesystem refuses links), so 300
      recipients of a 10 MB message cost 10 MB of disk, not 3 GB;
    - all or nothing: every recipient's file is in ``tmp/`` before the first rename into
      ``new/``; if any step fails, every file of the message is removed again, so a client told
      the message failed finds it in no mailbox;
    - no symlink below the root is ever followed: every directory is opened relative to its
      parent's descriptor with ``O_NOFOLLOW`` and files are created with ``O_EXCL|O_NOFOLLOW``,
      so a link planted inside the Maildir cannot send a message elsewhere
      (:class:`UnsafeMaildir`); the root itself is the caller's choice and may be a link;
    - no fsync: a message is durable once the kernel has it (a test double, not a mail store).

    Names are ``<now>.M<hash of message id and recipient>.<hostname>``, unique within a folder
    (reserved under a lock, written outside it); threads may deliver at once, one process per
    Maildir. :meth:`close` releases the directory descriptors.
    """

    def __init__(self, root: Path, hostname: str = DEFAULT_HOSTNAME) -> None:
        self.root = root
        self.hostname = hostname.replace("/", "_").replace(":", "_").replace("~", "_")
        self._folders: dict[tuple[str, bool], _Folder] = {}
        self._names: dict[tuple[str, bool], set[str]] = {}  # folders whose descriptors are not cached
        self._lock = threading.Lock()
        self._root_fd: int | None = None

    def folder_dir(self, recipient: str, folder: str) -> Path:
        base = self.root / mailbox_dirname(recipient)
        return base / ".Junk" if folder == "junk" else base

    def _root(self) -> int:
        if self._root_fd is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._root_fd

    def _open_folder(self, box: str, junk: bool) -> _Folder:
        fds: list[int] = []
        try:
            fds.append(_open_dir(self._root(), box))
            if junk:
                # a folder (.Junk) lives inside its mailbox's Maildir: the mailbox must be one too, or a
                # reader (mutt -f DIR/ADDRESS, Python's mailbox.Maildir) cannot open a junk-only address
                for sub in ("tmp", "new", "cur"):
                    os.close(_open_dir(fds[-1], sub))
                fds.append(_open_dir(fds[-1], ".Junk"))
            base = fds[-1]
            tmp, new = _open_dir(base, "tmp"), _open_dir(base, "new")
            os.close(_open_dir(base, "cur"))
        finally:
            for fd in fds:
                os.close(fd)
        path = os.path.join(str(self.root), box, ".Junk") if junk else os.path.join(str(self.root), box)
        return _Folder(path, tmp, new, set())

    def _folder(self, recipient: str, folder: str) -> tuple[_Folder, bool]:
        """The folder, and whether the caller must close its descriptors (not cached). Under the lock."""
        key = (mailbox_dirname(recipient), folder == "junk")
        f = self._folders.get(key)
        if f is not None:
            return f, False
        f = self._open_folder(*key)
        names = self._names.get(key)
        if names is None:
            names = set(os.listdir(f.new)) | set(os.listdir(f.tmp))
        f.names = names
        if len(self._folders) < FD_CACHE:
            self._folders[key] = f
            self._names.pop(key, None)
            return f, False
        self._names[key] = names
        return f, True

    def deliver(self, recipient: str, folder: str, message_id: str, now: int, data: bytes) -> Path:
        """One recipient's copy of ``data`` (see :meth:`deliver_all`)."""
        return self.deliver_all([recipient], folder, message_id, now, b"", data)[0]

    def deliver_all(self, recipients: Sequence[str], folder: str, message_id: str, now: int, head: bytes,
                    body: bytes) -> list[Path]:
        """``head + body`` into every recipient's ``folder``, stored once; all or none (OSError)."""
        slots: list[tuple[_Folder, str, bool]] = []  # folder, name, close after
        made: list[tuple[int, str]] = []  # (dir fd, name) of every file created so far
        try:
            with self._lock:
                for r in recipients:
                    f, close = self._folder(r, folder)
                    slots.append((f, self._reserve(f, message_id, r, now), close))
            first: tuple[int, str] | None = None
            for f, name, _ in slots:
                if first is not None and self._link(first, f.tmp, name):
                    made.append((f.tmp, name))
                    continue
                fd = os.open(name, _FILE_FLAGS, 0o644, dir_fd=f.tmp)
                made.append((f.tmp, name))
                try:
                    _write_all(fd, head, body)
                finally:
                    os.close(fd)
                first = first or (f.tmp, name)
            for i, (f, name, _) in enumerate(slots):
                os.rename(name, name, src_dir_fd=f.tmp, dst_dir_fd=f.new)
                made[i] = (f.new, name)
            return [Path(f.path, "new", name) for f, name, _ in slots]
        except BaseException:
            for d, name in made:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=d)
            with self._lock:
                for f, name, _ in slots:
                    f.names.discard(name)
            raise
        finally:
            for f, _, close in slots:
                if close:
                    os.close(f.tmp)
                    os.close(f.new)

    def _reserve(self, f: _Folder, message_id: str, recipient: str, now: int) -> str:
        digest = blake2b(f"{message_id}\x00{recipient.lower()}".encode("utf-8", "surrogateescape"),
                         digest_size=8).hexdigest()
        stem = f"{now}.M{digest}"
        name = f"{stem}.{self.hostname}"
        n = 1
        while name in f.names:
            n += 1
            name = f"{stem}_{n}.{self.hostname}"
        f.names.add(name)
        return name

    @staticmethod
    def _link(src: tuple[int, str], dst_dir: int, name: str) -> bool:
        try:
            os.link(src[1], name, src_dir_fd=src[0], dst_dir_fd=dst_dir, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP):
                return False  # the filesystem will not link: write a copy
            raise
        return True

    def clean_tmp(self, *, max_age: float = STALE_TMP_SECONDS, now: float | None = None) -> int:
        """Remove what a killed writer left in ``tmp/`` folders; returns how many files went.

        Files this host's sink names (``*.<hostname>``) go whatever their age — only a sink
        writes there, and none is running on this Maildir yet; others only once older than
        ``max_age`` (36 hours, as Maildir readers expect). Links are never followed.
        """
        clock = time.time() if now is None else now
        removed = 0
        root = self._root()
        suffix = f".{self.hostname}"
        for box in os.listdir(root):
            for sub in ("tmp", ".Junk/tmp"):
                try:
                    fd = os.open(f"{box}/{sub}", _DIR_FLAGS, dir_fd=root)
                except OSError:
                    continue
                try:
                    for name in os.listdir(fd):
                        try:
                            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        except OSError:
                            continue
                        if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
                            continue
                        if name.endswith(suffix) or clock - st.st_mtime > max_age:
                            with contextlib.suppress(OSError):
                                os.unlink(name, dir_fd=fd)
                                removed += 1
                finally:
                    os.close(fd)
        return removed

    def close(self) -> None:
        """Release the cached directory descriptors (a later delivery opens them again)."""
        with self._lock:
            folders, self._folders = self._folders, {}
            for key, f in folders.items():
                self._names[key] = f.names
                os.close(f.tmp)
                os.close(f.new)
            if self._root_fd is not None:
                os.close(self._root_fd)
                self._root_fd = None


def _write_all(fd: int, head: bytes, body: bytes) -> None:
    """``head`` then ``body`` (no joined copy of a large body)."""
    parts = [memoryview(head), memoryview(body)]
    while parts:
        n = os.writev(fd, parts)
        while parts and n >= len(parts[0]):
            n -= len(parts[0])
            parts.pop(0)
        if parts and n:
            parts[0] = parts[0][n:]
        parts = [p for p in parts if len(p)]
