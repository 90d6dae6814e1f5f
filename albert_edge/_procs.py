"""Worker processes that die with their parent, and telling whether a process is alive.

A worker the package starts (lowering in ``export --jobs``, the fine-tuning pool of the
default-model recipe, the comparison harness's workers) asks the kernel to kill it when its
parent dies (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a parent killed with SIGKILL
leaves no half-million-byte orphan computing for minutes. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a worker: SIGKILL this process when its parent (``parent_pid``) dies,
    exit at once if it already has, and end quietly on Ctrl-C."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    # Ctrl-C reaches the whole process group: a worker ends at once and quietly (exit 130), and
    # its parent reports the interruption in one line, instead of every worker printing a traceback.
    # Where SIGINT is ignored (a job started in the background by a shell, nohup), the parent
    # ignores it too, and so does the worker: dying alone would only break the parent's pool.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def init_pool_worker(parent_pid: int, torch_threads: int) -> None:
    """``ProcessPoolExecutor`` initializer: die with the parent, and run torch on
    ``torch_threads`` threads (the workers share the cores)."""
    die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(torch_threads)
