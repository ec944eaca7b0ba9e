"""Claim an output directory before a long run: resolve it, probe it, lock it, clean up.

    claim = OutDir("runs/qs")          # resolves the path; OutDirError for a dangling symlink, ...
    with claim:                        # probe + exclusive lock, before any training
        ...                            # claim.path (the real location), claim.work (hidden work dir)
        claim.finish()                 # the work directory is removed on leaving

Policy:

* ``out`` given as a symbolic link is **followed** when it points to a directory: the run is
  written at the link's target (an empty target is filled, a non-empty one counts as an
  existing run directory) and the link keeps pointing to it. A dangling link, or a link to
  something that is not a directory, is refused. Symbolic links among the parent folders
  are followed as well.
* Everything is probed up front: the missing parent folders are created (and removed
  again if the probe fails), then the hidden work directory ``.<name>.work`` next to the
  output directory, a test file inside it, and a sibling with the writer's temporary name
  (``.<name>.tmp-XXXXXXXX``); an output directory that exists already must be writable
  itself and not a mount point (the finished run is renamed onto it). A read-only or pseudo
  file system (``/proc``, ``/sys``, cgroup, …: :data:`PSEUDO_FS`, looked up in
  ``/proc/self/mountinfo``), a name too long for
  the file system or a missing permission is an :class:`OutDirError` (one line, a
  ``ValueError``) before anything has run, and what the probe created is removed again.
* The lock is ``fcntl.flock`` on ``.<name>.work/lock``, taken without waiting and held
  until the claim is released: a second claim on the same output directory (another
  process, or another claim in this one) gets an :class:`OutDirError` at once.
* On release the work directory (lock file included) is removed unless
  :meth:`OutDir.keep_work` was called (an interrupted run keeps its checkpoint there for
  ``--resume``); temporary siblings ``.<name>.tmp-*`` left by a killed writer are removed
  while the lock is held.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_FILE = "lock"
PSEUDO_FS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "devpts", "debugfs", "tracefs", "securityfs",
                       "pstore", "bpf", "configfs", "fusectl", "mqueue", "binfmt_misc", "efivarfs", "autofs"})
ALLOWED = "a new or existing directory path that this user can write, on a real file system"


class OutDirError(ValueError):
    """The output location cannot be used; the message is one line naming it."""


def short(path: str | Path, limit: int = 80) -> str:
    """``path`` as text, cut in the middle when longer than ``limit`` (never echo a path at length),
    control characters escaped."""
    text = str(path)
    if len(text) > limit:
        keep = (limit - 5) // 2
        text = f"{text[:keep]}[...]{text[-keep:]}"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)  # a NUL or newline, escaped


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "a name in the path is too long for the file system"
    return (exc.strerror or type(exc).__name__).lower()


class OutDir:
    """An output directory claimed for one command (see module docstring)."""

    def __init__(self, out: str | Path, *, flag: str = "--out") -> None:
        self.given = Path(out)
        self.flag = flag
        self.path = self._resolve()
        self.work = self.path.parent / f".{self.path.name}.work"
        self._fd: int | None = None
        self._made: list[Path] = []
        self._made_work = False
        self._keep = False

    # ------------------------------------------------------------------ public
    def __enter__(self) -> OutDir:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Create the parents and the work directory, lock, and probe (OutDirError on failure)."""
        try:
            self._make_parents()
            self._lock()
            self._probe()
        except BaseException:
            self.release(failed=True)
            raise

    def keep_work(self, keep: bool = True) -> None:
        """Leave the work directory in place on release (it holds a resumable checkpoint)."""
        self._keep = keep

    def clear_work(self) -> None:
        """Remove everything in the work directory except the lock (a fresh start)."""
        for entry in self.work.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def release(self, failed: bool = False) -> None:
        """Remove the work directory (unless kept), then drop the lock; ``failed``: also
        remove the parent folders :meth:`acquire` created, when they are empty."""
        if self._fd is not None:
            if not self._keep:
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                (self.work / LOCK_FILE).unlink(missing_ok=True)
                try:
                    self.work.rmdir()  # nothing left to resume from: no empty litter
                except OSError:
                    pass
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        elif self._made_work:  # the lock was never taken: remove the work directory we made
            try:
                self.work.rmdir()
            except OSError:
                pass
        self._made_work = False
        if failed:
            for d in reversed(self._made):
                try:
                    d.rmdir()
                except OSError:
                    break
        self._made = []

    # ------------------------------------------------------------------ internals
    def _error(self, what: str) -> OutDirError:
        return OutDirError(f"{self.flag}: {short(self.given)}: {what} (allowed: {ALLOWED})")

    def _resolve(self) -> Path:
        out = self.given
        try:
            if out.is_symlink():
                target = out.resolve()
                if not target.exists():
                    raise self._error(f"a symbolic link to {short(target)}, which does not exist")
                if not target.is_dir():
                    raise self._error(f"a symbolic link to {short(target)}, which is not a directory")
                return target
            if out.exists() and not out.is_dir():
                raise self._error("exists and is not a directory")
            real = out.resolve()
            if real.name in ("", ".", ".."):
                raise self._error("not a directory name")
            return real
        except OSError as exc:
            raise self._error(_reason(exc)) from None
        except ValueError:  # "embedded null byte"
            raise self._error("not a valid path (it holds a NUL character)") from None

    def _make_parents(self) -> None:
        missing = []
        current = self.path.parent
        try:
            while not current.exists():
                missing.append(current)
                current = current.parent
            if not current.is_dir():
                raise self._error(f"{short(current)} is not a directory")
            kind = _fs_type(current)
            if kind in PSEUDO_FS:
                raise self._error(f"on the {kind} pseudo file system, not a place for files")
            for current in reversed(missing):
                current.mkdir()
                self._made.append(current)
        except OSError as exc:
            raise self._error(f"cannot create {short(current.name, 40)}: {_reason(exc)}") from None

    def _lock(self) -> None:
        for _ in range(10):  # another process may remove the work directory while we open it
            try:
                try:
                    self.work.mkdir()
                    self._made_work = True
                except FileExistsError:
                    pass
                fd = os.open(self.work / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._error(f"cannot create {short(self.work.name, 40)}: {_reason(exc)}") from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    holder = _read_pid(fd)
                    os.close(fd)
                    if exc.errno in (errno.EAGAIN, errno.EACCES):
                        who = f" (pid {holder})" if holder else ""
                        raise OutDirError(f"{self.flag}: {short(self.given)}: in use by another photonic-sim "
                                          f"command{who} (allowed: one command per output directory at a time)") from None
                    raise self._error(f"cannot lock {short(self.work / LOCK_FILE)}: {_reason(exc)}") from None
            try:  # the lock must be on the file that is at the path now
                same = os.fstat(fd).st_ino == os.stat(self.work / LOCK_FILE).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return
            os.close(fd)
        raise self._error("the lock file keeps disappearing")

    def _probe(self) -> None:
        try:
            probe = self.work / ".probe-checkpoint-phases_by_mesh.npz"
            with open(probe, "wb") as fh:
                fh.write(b"photonic-sim probe\n")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
            if self.path.is_dir():  # an existing run directory is replaced by a rename: it must be writable
                if os.path.ismount(self.path):
                    raise self._error("a mount point; the report is renamed into place, so name a folder inside it")
                inner = self.path / f".photonic-sim-probe-{os.getpid()}"
                inner.write_bytes(b"photonic-sim probe\n")
                inner.unlink()
            for stale in self.path.parent.glob(f".{self.path.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            shutil.rmtree(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        except OSError as exc:
            raise self._error(f"cannot write there: {_reason(exc)}") from None


def _fs_type(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` (Linux ``/proc/self/mountinfo``), else None."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
        real = os.path.realpath(path)
    except OSError:
        return None
    best, kind = -1, None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = fields[4].encode().decode("unicode_escape")  # mountinfo writes spaces as \040
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > best:
            best, kind = len(mount), right.split()[0]
    return kind


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
