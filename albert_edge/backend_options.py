"""XNNPACK's runtime options (the packed-weights cache, the shared workspace), set from Python.

Why: ALBERT's twelve layer steps share one set of weights, and the ``.pte`` stores them once,
but XNNPACK packs weights per operator when a method is loaded, so the unrolled graph packs
the shared layer once per layer step (albert-base-v2 int8: +100 MB, fp32: +353 MB). XNNPACK's
packed-weights cache, keyed by the content hash of each weight, packs each distinct weight
once per process; programs loaded together (a bundle's fp32 and int8 programs, two copies of
one program) share it too. ExecuTorch's Android and iOS build presets turn it on; the Linux
Python wheel compiles it in but leaves it off, and Python has no setter.

How: the XNNPACK backend reads its process-wide option ``weight_cache_enabled`` (bool, backend
``"XnnpackBackend"``) when a method is loaded. The wheel's ``lib/libexecutorch.so``, which the
pybinding and the XNNPACK backend share, exports ``executorch::runtime::set_option(const char*
backend, Span<BackendOption>)`` and ``get_option``; this module calls them with ``ctypes``.
``BackendOption`` is ``{char key[64]; std::variant<bool, int, std::array<char, 256>> value;}``:
324 bytes, the variant's storage at offset 64 and its index byte at offset 320 (0 = bool,
1 = int); ``tests/test_backend_options.py`` compiles that struct against the wheel's own headers
to check the layout. Each call passes a zeroed buffer larger than the struct, so a layout that
ever differs cannot make the library read or write outside memory this module owns; every
setting is read back with ``get_option`` (the backend leaves a key it does not know untouched),
and anything unexpected (not Linux, another library, a missing symbol, an error code, a value
that did not take) is logged once as a warning that names it, and the program loads without
the cache: the same outputs, more memory.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

BACKEND = b"XnnpackBackend"
WEIGHT_CACHE = b"weight_cache_enabled"

_SET = "_ZN10executorch7runtime10set_optionEPKcNS0_4SpanINS0_13BackendOptionEEE"
_GET = "_ZN10executorch7runtime10get_optionEPKcNS0_4SpanINS0_13BackendOptionEEE"
KEY_LENGTH = 64  # kMaxOptionKeyLength
VALUE_LENGTH = 256  # kMaxOptionValueLength: the largest alternative of the variant
OPTION_SIZE = 324  # sizeof(BackendOption)
INDEX_OFFSET = KEY_LENGTH + VALUE_LENGTH  # the variant's index byte follows its storage
BOOL, INT = 0, 1  # variant indices
_BUFFER = 1024  # bytes passed per option: room to spare should the struct ever be larger


class _Span(ctypes.Structure):
    """``executorch::runtime::Span<BackendOption>``: a pointer and a length, passed by value."""

    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _Library:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self.set_option = getattr(lib, _SET)
        self.get_option = getattr(lib, _GET)
        for fn in (self.set_option, self.get_option):
            fn.argtypes = [ctypes.c_char_p, _Span]
            fn.restype = ctypes.c_uint32  # executorch::runtime::Error, 0 = Ok


_warned: set[str] = set()


def _warn_once(what: str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("XNNPACK weight cache unavailable (%s); programs load without it: same outputs, "
                    "more memory (each layer step packs its own copy of the shared weights)", what)


def _loaded_libexecutorch() -> Path | None:
    """The ``libexecutorch.so`` the pybinding loaded, from ``/proc/self/maps`` (None if absent)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if path.endswith("/libexecutorch.so"):
                    return Path(path)
    except OSError:
        pass
    return None


@lru_cache(maxsize=1)
def _library() -> _Library | str:
    """The option functions of the process's ExecuTorch runtime, or what was missing."""
    if not sys.platform.startswith("linux"):
        return f"the option calls are only wired up for Linux, not {sys.platform}"
    from albert_edge._quiet import quiet_libraries

    quiet_libraries()
    import executorch.extension.pybindings.portable_lib  # noqa: F401  (loads libexecutorch.so)

    path = _loaded_libexecutorch()
    if path is None:
        return "the ExecuTorch pybinding did not load lib/libexecutorch.so"
    try:
        # RTLD_NOLOAD: the library already in the process, never a second copy whose options
        # the backend would not read.
        lib = ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        return _Library(lib)
    except (OSError, AttributeError) as err:
        return f"{path} lacks executorch::runtime::set_option/get_option ({err})"


def _option(key: bytes, index: int, value: int) -> bytearray:
    """One BackendOption in a zeroed buffer of ``_BUFFER`` bytes (the key NUL-terminated)."""
    buf = bytearray(_BUFFER)
    buf[: len(key)] = key
    if index == BOOL:
        buf[KEY_LENGTH] = value
    else:
        buf[KEY_LENGTH:KEY_LENGTH + 4] = struct.pack("<i", value)
    buf[INDEX_OFFSET] = index
    return buf


def _call(fn, buf: bytearray) -> int:
    """``fn("XnnpackBackend", Span(buf, 1))``: the library reads (and get_option writes) ``buf``."""
    address = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    return fn(BACKEND, _Span(address, 1))


def get_weight_cache() -> bool | None:
    """Whether XNNPACK's packed-weights cache is on for programs loaded from now on; None when
    the option cannot be read (see the module docstring)."""
    lib = _library()
    if isinstance(lib, str):
        return None
    # Pre-filled with an int so that a read the backend ignored is told from a real answer.
    buf = _option(WEIGHT_CACHE, INT, 0x5A)
    if _call(lib.get_option, buf) != 0 or buf[INDEX_OFFSET] != BOOL:
        return None
    return buf[KEY_LENGTH] != 0


def set_weight_cache(enabled: bool) -> bool:
    """Turn XNNPACK's packed-weights cache on or off for every program loaded after this call
    (process-wide; ``runtime.Program`` calls it before each load). Returns True when the option
    was set and read back; otherwise warns once, naming what failed, and returns False."""
    lib = _library()
    if isinstance(lib, str):
        if enabled:
            _warn_once(lib)
        return False
    error = _call(lib.set_option, _option(WEIGHT_CACHE, BOOL, int(bool(enabled))))
    if error != 0:
        if enabled:
            _warn_once(f"set_option('XnnpackBackend', weight_cache_enabled) returned error {error:#x}")
        return False
    now = get_weight_cache()
    if now is not bool(enabled):
        if enabled:
            _warn_once(f"weight_cache_enabled reads back as {now!r} after setting it to {bool(enabled)}")
        return False
    return True
