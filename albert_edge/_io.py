"""Atomic writing of files and folders: a reader sees the old one or the new one, never half of one."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from albert_edge._procs import alive
from albert_edge.errors import BusyError

log = logging.getLogger(__name__)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    On any failure the temporary file is removed and the exception propagates; ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file 0600; give it the mode an ordinary open() would (0666 & ~umask).
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """``data`` as JSON into ``path`` (atomically). NaN and infinity are refused (ValueError naming
    the file): they are not JSON, and a reader in another language would reject the file."""
    try:
        text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)
    except ValueError as err:
        raise ValueError(f"{path}: refusing to write a non-finite number (NaN or infinity) into JSON ({err})") from None
    atomic_write_text(path, text + "\n")


def read_json_object(path: Path, error: type[Exception]) -> dict:
    """The JSON object in ``path``; ``error`` (naming the file) if it is not valid JSON or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{path}: not valid JSON ({err})") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to read") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


LOCK_FILE = ".albert-edge.lock"


@contextmanager
def folder_lock(folder: Path, option: str = "--out") -> Iterator[Path]:
    """Hold ``folder`` (which must exist) for this process while the block runs: another run that
    asks for it gets a ``BusyError`` naming the holder's pid. The lock is the OS's (``flock`` on
    ``folder/.albert-edge.lock``), released when the holder ends however it ends, so a killed run
    never leaves a stale lock. The file stays (removing it would race with the next holder)."""
    path = Path(folder) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip() or "unknown"
        os.close(fd)
        raise BusyError(f"{option} {folder}: another albert-edge run (pid {holder}) is writing there; "
                        f"wait for it to finish, or give another {option}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a float")
    return value


def read_json_strictly(path: Path, error: type[Exception], what: str = "file") -> Any:
    """The JSON value in ``path``, or ``error`` with one line naming the file and what is wrong:
    missing, not a file, not UTF-8 text, not JSON, NaN or Infinity (not JSON numbers), or nested
    too deeply to read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {what}") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not a {what} (not UTF-8 text: byte {err.start} cannot be decoded)") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise error(f"{path}: not JSON ({err})") from None
    except ValueError as err:
        raise error(f"{path}: {err}; write a number or null") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to read") from None


def _sibling_prefix(out: Path) -> str:
    """Temporary folders beside ``out`` are named ``.<name>.<pid>.<random>.tmp`` (or ``.old``)."""
    return f".{out.name}.{os.getpid()}."


def is_temp_of(out: Path, p: Path) -> bool:
    """Whether ``p`` is named as a temporary folder of ``out`` (``.<name>.<pid>.<random>.tmp``/``.old``)."""
    return p.name.startswith(f".{Path(out).name}.") and p.name.endswith((".tmp", ".old"))


def remove_stale_temps(out: Path, where: Path | None = None) -> list[Path]:
    """Remove the temporary folders a killed run left beside ``out`` (or in ``where``: inside
    an ``out`` that cannot be renamed) whose process is gone, or that predate the pid in the
    name; returns them."""
    removed = []
    where = Path(where) if where is not None else out.parent
    if not where.is_dir():
        return removed
    for p in where.iterdir():
        if not (p.name.startswith(f".{out.name}.") and p.name.endswith((".tmp", ".old")) and p.is_dir()):
            continue
        owner = p.name[len(out.name) + 2:].split(".")[0]
        if not owner.isdigit() or (int(owner) != os.getpid() and not alive(int(owner))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def swap_dir_into_place(new: Path, out: Path) -> None:
    """Rename ``new`` to ``out``; an existing ``out`` is moved aside first and deleted after."""
    if not out.exists():
        os.rename(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out), suffix=".old", dir=out.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)  # put the old folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def swappable(out: Path) -> bool:
    """Whether an existing folder ``out`` can be renamed away and replaced whole: not a mount
    point, and its parent writable. (A new ``out`` is always made by a rename.)"""
    out = Path(out)
    return not out.exists() or (not os.path.ismount(out) and os.access(out.parent, os.W_OK | os.X_OK))


def assembly_dir(out: Path) -> Path:
    """Where ``replaced_dir`` builds the new contents of ``out``: beside it, or inside it when
    ``out`` cannot be renamed (``swappable``)."""
    out = Path(out)
    return out.parent if swappable(out) else out


def check_writable(folder: Path, option: str, error: type[Exception]) -> Path:
    """Refuse up front, with one line, a folder this process cannot write into (or create):
    before minutes of work, not after. Returns the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise error(f"{option} {folder}: exists and is not a folder; name a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".albert-edge.probe.", dir=existing))
    except OSError as err:
        raise error(f"{option} {folder}: cannot write into {existing} ({err.strerror}); choose another {option}") from None
    return folder


def _replace_contents(new: Path, out: Path) -> None:
    """Move every entry of ``new`` (a folder inside ``out``) into ``out`` (each by a rename), then
    remove what else ``out`` held: the folder itself stays, its contents are replaced."""
    names = {p.name for p in new.iterdir()}
    # manifest.json last: a reader that finds the new manifest finds the files it names
    for p in sorted(new.iterdir(), key=lambda p: p.name == "manifest.json"):
        target = out / p.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(p, target)
    for p in list(out.iterdir()):
        if p.name not in names and p != new:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    new.rmdir()


@contextmanager
def replaced_dir(out: Path) -> Iterator[Path]:
    """Build the new contents of folder ``out`` in the yielded temporary folder beside it.

    When the block ends normally, every file in it is synced to disk and the folder is swapped
    into place (an existing ``out`` is replaced as a whole); when it raises, the temporary folder
    is removed and ``out`` stays as it was. Temporary folders that a killed run left beside
    ``out`` are removed first (``remove_stale_temps``). Where ``out`` cannot be renamed (a mount
    point, or a folder whose parent is read-only: ``swappable``), the new contents are built in a
    temporary folder inside it and then renamed into it file by file: each file is replaced
    atomically, the set of them is not.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    whole = swappable(out)
    for stale in remove_stale_temps(out, assembly_dir(out)):
        log.info("removed %s, left by a run that was killed", stale)
    tmp = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out), suffix=".tmp", dir=assembly_dir(out)))
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        if whole:
            try:
                swap_dir_into_place(tmp, out)
            except OSError as err:
                # A mount that os.path.ismount does not see (a bind mount of the same filesystem)
                # refuses the rename: bring the contents into the folder instead.
                if err.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES) or not out.is_dir():
                    raise
                log.info("%s cannot be renamed (%s): replacing its files in place", out, err.strerror)
                inner = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out), suffix=".tmp", dir=out))
                try:
                    for p in tmp.iterdir():
                        (shutil.copytree if p.is_dir() else shutil.copy2)(p, inner / p.name)
                    _replace_contents(inner, out)
                finally:
                    shutil.rmtree(inner, ignore_errors=True)
                    shutil.rmtree(tmp, ignore_errors=True)
        else:
            _replace_contents(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
