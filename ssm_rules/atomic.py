"""Files ssm writes and reads on its own account (not plans): safely, whatever is at the path.

Writes (`--output`, `--write-baseline`, the plans `ssm import` writes) are atomic: a temporary
file in the same directory, fsync, rename, so that readers see the old content or the new,
never half of it: a CI job killed mid-write never leaves a truncated SARIF or baseline.

A rename replaces whatever the path names, so before writing, the path must be a regular file
or not exist yet. Refused, each with an OSError that says why:

- a special file (`/dev/null`, a FIFO, a socket, a device): renamed over, a device node becomes
  a regular file (as root, `--output /dev/null` replaced the device);
- a symbolic link: ssm never writes through one (a link committed into a repository could
  point anywhere the CI job may write), nor replaces it; name the file itself;
- a directory;
- one of the run's input files (`--output plan.yaml`), or the same file twice.

Reads of single files ssm was told to read (a baseline) refuse special files too: a FIFO
would block forever, `/dev/zero` never ends.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path


class UnsafeTarget(OSError):
    """A path ssm will not write to; `strerror` says why and what to do instead."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(errno.EINVAL, reason, os.fspath(path))


def check_target(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Raise UnsafeTarget unless `path` is a regular file (not a link) or does not exist, and is
    none of `inputs` (files the run reads, compared by device and inode)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable parent and the like: the write itself reports it
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeTarget(path, "is a symbolic link: ssm does not write through links; give the path of "
                                 "the file itself")
    if stat.S_ISDIR(info.st_mode):
        raise UnsafeTarget(path, "is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeTarget(path, "is not a regular file (a device, FIFO or socket): ssm writes only to a "
                                 "regular file or a new path")
    for given in inputs:
        try:
            other = os.stat(given)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino):
            raise UnsafeTarget(path, f"is one of this run's inputs ({os.fspath(given)}): it would be overwritten")


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Write `text` to `path` atomically: a temporary file in the same directory, fsync, rename.

    The new file keeps the mode of the file it replaces (or gets the default permissions a new
    file would get under the current umask). Raises UnsafeTarget for a path that is not a
    regular file or is one of `inputs` (see `check_target`), OSError when the directory does not
    exist or cannot be written; the temporary file never outlives a failure.
    """
    # Encoded before anything is created: text that cannot be written fails here.
    write_bytes_atomic(path, text.encode(encoding), inputs=inputs)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """`write_text_atomic` for bytes (a compiled catalog)."""
    check_target(path, inputs)
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    mode = _mode_for(target)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    fsync_directory(directory)


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; OSError (with a reason) otherwise.

    Opened without blocking, so that a FIFO is refused instead of waiting for a writer."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as stream:
        info = os.fstat(stream.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise OSError(errno.EISDIR, "is a directory", os.fspath(path))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket)", os.fspath(path))
        raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes:,} bytes", os.fspath(path))
    return raw


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
