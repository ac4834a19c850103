"""Write the report directory as one unit: readers see the old report or the new one, whole.

`ssm_rules.atomic.write_text_atomic` makes one file atomic; a report is three files that must
agree with each other, so the whole directory is swapped instead. Every file is written and
fsynced into a temporary directory beside REPORT_DIR (same file system), which then takes
REPORT_DIR's place: on Linux with one atomic `renameat2(RENAME_EXCHANGE)`; elsewhere with two
renames (between which, for a moment, there is no REPORT_DIR at all, but never a half one).

REPORT_DIR is replaced whole, so the audit refuses to write into a directory that it did not
create (it leaves a marker file in its reports): `--out ~` must not wipe a home directory.

An audit holds a lock on `.REPORT_DIR.lock` beside it while it runs (`report_lock`): a second
audit writing the same report waits for the first, and every temporary directory it then finds
beside the report (`.REPORT_DIR.*.tmp`) was left by an audit that was killed, and is removed,
however recent. Where locks are not available, leftovers are removed after an hour unchanged.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import sys
import tempfile
import time

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; leftovers are removed by age
    fcntl = None
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TextIO, Union

from ssm_rules.atomic import fsync_directory
from ssm_rules.errors import UsageError

MARKER = ".ssm-audit-report"
Content = Union[str, Callable[[TextIO], None]]  # text, or a function that writes it to a stream
_STALE_SECONDS = 3600  # temporary directories left by a crash are removed after an hour


def check_target(target: Path) -> None:
    """Refuse a REPORT_DIR that is a file, or a directory of something other than our reports."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target}: exists and is not a directory")
    if target.is_dir() and not (target / MARKER).exists() and any(target.iterdir()):
        raise UsageError(f"{target}: exists and is not an ssm audit report (it has no {MARKER} file); "
                         "it would be replaced whole, so choose another --out or empty it first")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{parent}: no such directory (for --out {target})")


@contextmanager
def _writing(target: Path) -> Iterator[None]:
    """An OSError while writing beside `target` (a read-only or full directory) is a usage
    error naming the report directory, not a crash."""
    try:
        yield
    except OSError as error:
        raise UsageError(f"{target}: cannot write the report: {error.strerror or error}"
                         + (f" ({error.filename})" if error.filename and error.filename != str(target) else "")) from None


def replace_directory(target: str | Path, files: dict[str, Content]) -> list[Path]:
    """Make `target` a directory holding exactly `files` (name -> content), atomically.

    Returns the paths written. Raises UsageError for a target that is not ours (see
    `check_target`) or a parent that cannot be written. A failure at any point leaves the old
    directory as it was and no temporary directory behind. (Without the audit's lock: what
    crashed runs left is removed once it is an hour old.)
    """
    _remove_stale(Path(target).absolute().parent, Path(target).name)
    staging = stage(target, files)
    return swap(staging, target, list(files))


def stage(target: str | Path, files: dict[str, Content]) -> Path:
    """Write `files` into a new temporary directory beside `target` and return it. A content
    is text, or a function that writes to a text stream (so a large report is never held in
    memory whole). On failure nothing is left behind."""
    target = Path(target)
    check_target(target)
    parent = target.absolute().parent
    with _writing(target):
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
        try:
            for name, content in files.items():
                _write(staging / name, content)
            _write(staging / MARKER, "Written by `ssm audit`; this directory is replaced whole by the next run.\n")
            os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a report is meant to be read
            fsync_directory(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return staging


@contextmanager
def report_lock(target: str | Path) -> Iterator[None]:
    """Hold the report's lock for a whole audit, then remove what killed audits left beside it."""
    target = Path(target)
    parent = target.absolute().parent
    with _writing(target):
        descriptor = os.open(parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                             0o666 & ~_umask())
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                sys.stderr.write(f"ssm: waiting for another ssm audit writing {target} to finish\n")
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        _remove_stale(parent, target.name, every=fcntl is not None)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def scratch_directory(target: str | Path) -> Iterator[Path]:
    """A private temporary directory beside `target` for the audit's spool, removed at the end.

    Beside the report (not in /tmp, often a RAM disk) and named like a staging directory, so
    that one left by a killed run is removed by the next run (see `report_lock`).
    """
    target = Path(target)
    parent = target.absolute().parent
    with _writing(target):
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".spool.tmp", dir=parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def swap(staging: Path, target: str | Path, names: list[str]) -> list[Path]:
    """Put a staged directory in the place of `target` in one step (readers see old or new)."""
    target = Path(target)
    parent = target.absolute().parent
    try:
        with _writing(target):
            _swap(staging, target, parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / name for name in names]


def _swap(staging: Path, target: Path, parent: Path) -> None:
    if target.exists():
        if _exchange(staging, target):
            shutil.rmtree(staging)  # now the old report
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old.tmp", dir=parent))
            os.rename(target, old / "report")
            os.rename(staging, target)
            shutil.rmtree(old)
    else:
        os.rename(staging, target)
    fsync_directory(parent)


def _write(path: Path, content: Content) -> None:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        if callable(content):
            content(stream)
        else:
            stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot; fall back
        return False
    raise OSError(error, os.strerror(error), str(second))


def _remove_stale(parent: Path, name: str, *, every: bool = False) -> None:
    """Remove temporary directories that an earlier, crashed run left beside the report: all of
    them when the caller holds the report's lock (`every`), else those in which nothing has
    changed for an hour (a long audit's spool may still be being written)."""
    now = time.time()
    # Exactly the names mkdtemp gave them (8 random characters): `.report.v2.*` belongs to
    # another report, whose audit may be running.
    ours = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}(?:\.spool|\.old)?\.tmp")
    for candidate in parent.glob(f".{name}.*.tmp"):
        try:
            if not ours.fullmatch(candidate.name) or candidate.is_symlink() or not candidate.is_dir():
                continue  # not ours: never followed, never removed
            if every or now - _last_change(candidate) > _STALE_SECONDS:
                shutil.rmtree(candidate, ignore_errors=True)
        except OSError:
            pass


def _last_change(directory: Path) -> float:
    return max([directory.stat().st_mtime, *(entry.stat().st_mtime for entry in directory.iterdir())])
