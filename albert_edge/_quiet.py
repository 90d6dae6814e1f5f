"""Library noise a user cannot act on, silenced at its source.

Importing ExecuTorch imports torchao, which logs a warning for each of its CUDA extensions that
cannot load on a CPU machine and one for the missing Triton, and makes torch's pytree log an
Enum deprecation; lowering makes torch warn about ``LeafSpec`` from inside ``copy``; the
pybindings warn that their API is experimental; and ExecuTorch's C++ prints ``[cpuinfo_utils.cpp]``
and ``[threadpool.cpp]`` lines on stderr when its thread pool starts or is resized. None of it
says anything about the user's model or what to do.

``quiet_libraries()`` raises those loggers to ERROR and filters those warnings by message (so
nothing else is hidden); ``native_stderr()`` captures what C++ writes to file descriptor 2 around
one call and shows it only if the call fails, or at INFO (``albert-edge -v``).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

NOISY_LOGGERS = ("torchao", "torch.utils._pytree")
NOISY_WARNINGS = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (Warning, r"This API is experimental and subject to change without notice"),
    (DeprecationWarning, r"read_binary is deprecated"),
    (DeprecationWarning, r"open_text is deprecated"),
)

_done = False


def quiet_libraries() -> None:
    """Silence the noise above (idempotent); call before importing ExecuTorch or torchao."""
    global _done
    if _done:
        return
    _done = True
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category, message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


@contextmanager
def native_stderr(what: str) -> Iterator[None]:
    """Capture what native code writes to stderr (fd 2) inside the block; log it at INFO naming
    ``what``, or write it to stderr when the block raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (an embedding host): nothing to capture
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace").strip()
            if text and failed:
                print(f"native output of {what}:\n{text}", file=sys.stderr)
            elif text:
                log.info("native output of %s:\n%s", what, text)
