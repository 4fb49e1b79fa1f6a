"""Atomic file writes: a temporary file in the same folder, then a rename, so a kill never leaves half a file."""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from .errors import UsageError


def atomic_write(path, write: Callable[[object], None], binary: bool = True) -> None:
    """Call `write(fileobj)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    A failure (a full disk, a read-only folder) leaves the previous `path` as it was, removes the temporary
    file, and is raised as a one-line `WriteError` naming the path and the problem.
    """
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise WriteError(path, exc) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give them the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TMP_SUFFIX = ".tmp"


def atomic_link(source, path) -> None:
    """Make `path` hold the same bytes as `source` without a second copy on disk: a hard link, renamed into
    place atomically. Where the file system has no hard links, an atomic copy instead. Later atomic writes to
    `source` replace its directory entry, not the shared file, so `path` keeps the bytes it was given."""
    source, path = Path(source), Path(path)
    tmp = path.with_name(f".{path.name}.link{os.getpid()}{TMP_SUFFIX}")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
    except OSError:
        tmp.unlink(missing_ok=True)
        with open(source, "rb") as original:
            atomic_write(path, lambda handle: shutil.copyfileobj(original, handle))
        return
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError(path, exc) from None


class WriteError(UsageError):
    """A file could not be written; the message names the path and what the operating system said."""

    def __init__(self, path, exc: OSError):
        reason = exc.strerror or type(exc).__name__
        super().__init__(f"cannot write {path}: {reason} (free some space, fix the permissions, or choose another "
                         f"folder)")


def make_folder(folder) -> Path:
    """`mkdir -p`, with a one-line error when a file stands in the way or the parent is read-only."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"cannot create the folder {folder}: a file of that name (or above it) is in the "
                         f"way; choose another path") from None
    except NotADirectoryError:
        raise UsageError(f"cannot create the folder {folder}: a part of that path is a file, not a folder; "
                         f"choose another path") from None
    except OSError as exc:
        raise UsageError(f"cannot create the folder {folder}: {exc.strerror or type(exc).__name__}") from None
    return folder


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporary files that a killed `atomic_write` left in `folder` (`.NAME.XXXX.tmp`)."""
    removed = []
    for stale in Path(folder).glob(f".*{TMP_SUFFIX}"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text), binary=False)


@contextlib.contextmanager
def staged_dir(target, prefix: str = ".staging-") -> Iterator[Path]:
    """Build a folder in a temporary sibling of `target`; put it in place only if the block succeeds.

    At every instant a complete tree sits at `target`: the old one until the swap, the new one after it. Where
    the system can exchange two paths in one step (`exchange`), the staging folder and `target` trade places
    and the old tree is deleted from the staging path; elsewhere `target` is renamed aside (`OLD_MARK`), the
    staging folder renamed into place, and the old tree deleted, and a kill between those two renames is
    undone by the next `staged_dir` of the same target (`restore_interrupted`). A kill or an error leaves at
    most a `prefix*` folder beside `target`, never a half-built or missing `target`.
    """
    target = Path(target)
    make_folder(target.parent)
    restore_interrupted(target)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())   # mkdtemp makes 0700 folders; the target gets the usual permissions
    try:
        yield staging
        pause_point("staged")
        replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)   # after an exchange it holds the old tree


OLD_MARK = ".old-"   # `.<name>.old-<pid>-XXXX`: a target renamed aside while its replacement moves in


def replace_folder(staging: Path, target: Path) -> None:
    """Put the tree `staging` at `target` in one step; an old `target` ends up at `staging` (exchanged) or is
    deleted (where paths cannot be exchanged)."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    try:
        exchange(staging, target)
        pause_point("exchanged")
        return
    except NotImplementedError:
        pass
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}{OLD_MARK}{os.getpid()}-", dir=target.parent))
    os.rename(target, aside)   # a folder renamed onto an empty folder replaces it
    pause_point("aside")
    os.rename(staging, target)
    shutil.rmtree(aside, ignore_errors=True)


def restore_interrupted(target) -> Optional[Path]:
    """Undo a replacement killed between its two renames: with no `target` and a tree renamed aside
    (`OLD_MARK`), that tree goes back to `target`. Returns the restored folder's old name, or None."""
    target = Path(target)
    if os.path.lexists(target) or not target.parent.is_dir():
        return None
    aside = sorted(target.parent.glob(f".{glob.escape(target.name)}{OLD_MARK}*"), key=lambda p: p.stat().st_mtime)
    if not aside:
        return None
    os.rename(aside[-1], target)
    return aside[-1]


_RENAME_EXCHANGE = 2        # linux/fs.h
_RENAME_SWAP = 2            # macOS sys/stdio.h, renamex_np


def exchange(first, second) -> None:
    """Swap two existing paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`, macOS
    `renamex_np(RENAME_SWAP)`); `NotImplementedError` where the system or its file system cannot."""
    import ctypes
    import errno
    import sys

    libc = ctypes.CDLL(None, use_errno=True)
    a, b = os.fsencode(os.fspath(first)), os.fsencode(os.fspath(second))
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_cwd = -100
        done = libc.renameat2(at_cwd, a, at_cwd, b, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        done = libc.renamex_np(a, b, _RENAME_SWAP)
    else:
        raise NotImplementedError("no atomic exchange of two paths on this system")
    if done != 0:
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise NotImplementedError(f"this file system cannot exchange two paths ({os.strerror(code)})")
        raise OSError(code, os.strerror(code), os.fspath(second))


def remove_stale_folders(folder, patterns: Iterable[str]) -> list[Path]:
    """Delete the folders in `folder` matching `patterns` (staging folders and trees renamed aside by a killed
    `staged_dir`); call it only while no writer of `folder` can be running (under its lock)."""
    removed = []
    for pattern in patterns:
        for stale in Path(folder).glob(pattern):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
                removed.append(stale)
    return removed


PAUSE_ENV = "CIFAR_LAB_PAUSE_AT"


def pause_point(name: str) -> None:
    """A named point of a multi-step write where a fault test may stop this process: when the environment
    variable `PAUSE_ENV` names it, say so on stderr and wait to be killed. Does nothing otherwise."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    import sys

    print(f"paused at {name}", file=sys.stderr, flush=True)
    while True:
        time.sleep(60)


LOCK_NAME = ".lock"


class FolderBusy(UsageError):
    """Another process holds the lock of a folder that one writer at a time may fill."""


@contextlib.contextmanager
def folder_lock(folder, what: str = "folder", name: str = LOCK_NAME) -> Iterator[Path]:
    """Hold an exclusive `flock` on `folder/<name>` (`.lock`) for the block: one writer per folder. A second
    process gets a one-line `FolderBusy` naming the first one's PID and has written nothing into the folder.
    Writers of different kinds that nest in one folder (a notebook run, and the training run its notebook
    starts in the same `out_dir`) hold locks of different `name`s, so the inner one is not refused by the outer.

    The operating system releases the lock when its holder exits, however it dies, so a killed run never
    leaves the folder locked. The lock file is removed when the block ends, while the lock is still held;
    a process that opened the file before that notices the file it locked is gone and locks the new one.
    """
    folder = make_folder(folder)
    path = folder / name
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WriteError(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise _busy(folder, what, holder) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder removed the file after this process opened it: lock the current one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def check_unlocked(folder, what: str = "folder") -> None:
    """Raise `FolderBusy` if a process holds `folder`'s lock (`folder_lock`); creates and writes nothing."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:  # no lock file: no holder
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released at once by the close below
    except BlockingIOError:
        raise _busy(folder, what, _lock_holder(fd)) from None
    finally:
        os.close(fd)


def _busy(folder, what: str, holder: str) -> FolderBusy:
    return FolderBusy(f"{folder} is in use by another {what} (PID {holder}); wait for it to end, or choose "
                      f"another folder")


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, current = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)


def _lock_holder(fd: int) -> str:
    """The PID the holder wrote into the lock file; it writes it right after locking, so wait a moment."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.05)
    return "unknown"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
