"""Atomic writes: a reader sees the old file or the new one, never half of one.

Every file the program writes into a run directory goes through here: written to a temporary
file in the same directory, flushed and fsynced, given the mode the umask asks for (`mkstemp`
would leave 0600), renamed over the target, and the directory fsynced. When the write fails
(a full disk, a quota) the temporary file is removed, the previous file is kept, and the error
is one line naming the path, the bytes it needed and the bytes free.

A process killed while writing (SIGKILL, a lost node) leaves its temporary behind: `.NAME.tmpXXXX`
(a file or a directory), or `.NAME.old<pid>` (a directory being replaced). The next owner of the
run directory removes them (`remove_orphans`) before it writes anything.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ner.errors import UserError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)  # a read-only mount, permissions
RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # an OSError as Rust libraries word it


def umask() -> int:
    """The process's umask, read without changing it (Linux), else by setting it back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path, directory: bool = False) -> None:
    """Give `path` the mode a plain open() or mkdir() would have given it."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def no_space(path: Path, needed: int | None, what: str = "file") -> UserError:
    """The one-line error for a write that found no room."""
    free = shutil.disk_usage(path.parent).free if path.parent.exists() else None
    need = f"needs about {human(needed)}" if needed else "needs more room"
    have = f", {human(free)} free on that file system" if free is not None else ""
    return UserError(
        f"{what} {path}: no space left ({need}{have}); nothing was replaced (the previous "
        "version is kept); free some space and run the same command again"
    )


def cannot_write(path: Path, error: OSError, what: str = "file") -> UserError:
    """The one-line error for a place the program may not write (read-only, permissions)."""
    return UserError(
        f"{what} {path}: cannot be written ({error.strerror or error}: {error.filename or path})"
    )


def check_room(path: Path, needed: int, what: str = "file") -> None:
    """Refuse before writing when the file system clearly has less room than `needed` bytes."""
    check_writable(path, what)
    if shutil.disk_usage(path.parent).free < needed:
        raise no_space(path, needed, what)


def check_writable(path: Path, what: str = "file") -> None:
    """Refuse before any work when `path` could not be written: its directory is created and a
    temporary file made and removed there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        if e.errno in NO_SPACE:
            raise no_space(path, None, what) from None
        raise cannot_write(path, e, what) from None


def write_with(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], Any],
    needed: int | None = None,
    what: str = "file",
) -> None:
    """Call `write(f)` on a temporary binary file next to `path`, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp")
    except OSError as e:
        raise _failed(e, path, needed, what) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        follow_umask(Path(tmp))
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if _out_of_space(e) or _not_writable(e):
            raise _failed(e, path, needed, what) from None
        raise
    _fsync_dir(path.parent)


def _failed(error: BaseException, path: Path, needed: int | None, what: str) -> BaseException:
    """A write's failure as one line when it is a full disk or a place it may not write (any
    OSError of making its directory or temporary: /proc/x as root is ENOENT)."""
    if _out_of_space(error):
        return no_space(path, needed, what)
    if _not_writable(error):
        return cannot_write(path, _not_writable(error), what)
    if isinstance(error, OSError):
        return cannot_write(path, error, what)
    return error


def _out_of_space(error: BaseException | None) -> bool:
    """Is a full disk (or quota) behind `error`? torch.save wraps the OSError in a RuntimeError;
    safetensors raises its own error, worded "... (os error 28)"."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return True
        rust = RUST_OS_ERROR.search(str(error))
        if rust and int(rust.group(1)) in NO_SPACE:
            return True
        error = error.__cause__ or error.__context__
    return False


def _not_writable(error: BaseException | None) -> OSError | None:
    """The OSError of a read-only file system or a refused permission behind `error`, if any."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in NOT_WRITABLE:
            return error
        error = error.__cause__ or error.__context__
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes, what: str = "file") -> None:
    write_with(path, lambda f: f.write(data), len(data), what)


def write_text(path: str | os.PathLike, text: str, what: str = "file") -> None:
    write_bytes(path, text.encode("utf-8"), what)


def write_json(path: str | os.PathLike, obj: Any, what: str = "file") -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n", what)


def replace_dir(out_dir: Path, fill: Callable[[Path], None], what: str = "directory") -> None:
    """Fill a sibling temporary directory with `fill(tmp)`, then swap it in for `out_dir`.

    `out_dir` is complete or absent, never half written: an older one is replaced only by a
    complete new one. Files inside follow the umask.
    """
    try:
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp"))
    except OSError as e:
        raise _failed(e, out_dir, None, what) from None
    try:
        fill(tmp)
        for item in [tmp, *tmp.rglob("*")]:
            follow_umask(item, directory=item.is_dir())
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if _out_of_space(e) or _not_writable(e):
            raise _failed(e, out_dir, None, what) from None
        raise


ORPHAN = re.compile(r"\..+\.(tmp[a-z0-9_]{8}|old[0-9]+)")  # names of the temporaries above


def remove_orphans(directory: Path) -> list[tuple[Path, int]]:
    """Remove the temporaries that killed writers left under `directory` (which the caller owns:
    no other process writes there). Returns each one removed with its size in bytes."""
    found = [p for p in directory.rglob(".*") if ORPHAN.fullmatch(p.name)]
    removed = []
    for path in found:
        if not path.exists():  # inside an orphan directory removed before it
            continue
        if path.is_dir() and not path.is_symlink():
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        else:
            size = path.lstat().st_size
            path.unlink()
        removed.append((path, size))
    return removed


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not (yet) complete JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
