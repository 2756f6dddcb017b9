"""Writing output files so that no data is ever lost.

* :func:`write_atomic` / :func:`write_all_atomic`: each file is written to a temporary file in its own folder,
  flushed and fsynced, then moved over the target with :func:`os.replace`: a full disk, an error or an interrupt
  leaves the old file (or no file) and never a truncated one. :func:`write_all_atomic` writes every temporary file
  first and renames only once all of them are complete, so a failure changes none of the targets.
* :func:`check_output_path`: before any work starts, a path is refused unless a file can really be created in its
  folder (a temporary file is created and removed there): a trailing-slash path, a folder, a device or FIFO
  (``/dev/full``), a folder that does not exist or does not take new files (``/proc``), a read-only file.
* :func:`same_file`: whether two paths name one file (resolved real paths: symlinks, ``./x`` and ``x``; hard links
  with :func:`os.path.samefile` where both exist).

A symlink as the target is followed: the file it points to is replaced and the link stays.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ..errors import UsageError


class OutputError(UsageError):
    """An output path that cannot be written (refused before the run, or failed while writing)."""


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (existing or not)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): the real paths decided
        return False


def _target(path: str | os.PathLike) -> Path:
    """The file that writing ``path`` replaces: symlinks resolved, so a link keeps pointing where it did."""
    return Path(os.path.realpath(path))


def check_output_path(option: str, path: str | os.PathLike) -> None:
    """Refuse (:class:`OutputError`, naming ``option`` and ``path``) an output path that cannot be written.

    The check is real: a temporary file is created (and removed) in the target's folder.
    """
    text = os.fspath(path)
    where = f"{option} {text}"
    if not text:
        raise OutputError(f"{option}: give a file name")
    if text.endswith(os.sep) or (os.altsep and text.endswith(os.altsep)):
        raise OutputError(f"{where}: ends with '{text[-1]}', so it names a folder; give a file name")
    p = Path(text)
    if p.is_dir():
        raise OutputError(f"{where}: is a folder; give a file name")
    if p.exists():
        mode = os.stat(p).st_mode
        if not stat.S_ISREG(mode):
            raise OutputError(f"{where}: is not a regular file (a device, FIFO or socket); give a file name")
        if not os.access(p, os.W_OK):
            raise OutputError(f"{where}: the file is not writable")
    target = _target(p)
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"{where}: folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".probe")
    except OSError as exc:
        raise OutputError(f"{where}: cannot create a file in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def _umask() -> int:
    try:  # Linux: read it without changing it
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(target: Path, data: bytes) -> str:
    """A complete, fsynced temporary copy of ``data`` beside ``target`` with the mode ``target`` has (or would get)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def write_all_atomic(files: list[tuple[str | os.PathLike, str | bytes]]) -> None:
    """Write every (path, text or bytes): all temporary files first, then the renames. On any error before the
    renames no target has changed and no temporary file is left; an OS error (a full disk, a folder gone) is raised
    as :class:`OutputError` naming the file. Text is written as UTF-8."""
    staged: list[tuple[str, Path]] = []
    current = ""
    try:
        for path, data in files:
            current = os.fspath(path)
            target = _target(path)
            staged.append((_temporary(target, _encode(data)), target))
        for i, (tmp, target) in enumerate(staged):
            current = str(target)
            os.replace(tmp, target)
            staged[i] = ("", target)
    except BaseException as exc:
        for tmp, _ in staged:
            if tmp:
                _remove(tmp)
        if isinstance(exc, OSError):
            changed = sum(1 for tmp, _ in staged if not tmp)
            note = "no output file was changed" if not changed else f"{changed} output file(s) were already replaced"
            raise OutputError(f"{current}: cannot write it ({exc.strerror or exc}); {note}") from exc
        raise
    for folder in {target.parent for _, target in staged}:
        _sync_folder(folder)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write one file atomically (see :func:`write_all_atomic`)."""
    write_all_atomic([(path, data)])
