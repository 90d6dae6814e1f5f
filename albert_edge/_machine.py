"""What machine a figure was measured on: CPU model, cores and the software stack."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


THREADS_PER_CPU = 8  # the most threads accepted per CPU this process may run on


def max_threads() -> int:
    """The largest thread count accepted (``--threads``, ``num_threads``): THREADS_PER_CPU x the
    CPUs this process may run on. More threads than CPUs only contend; thousands exhaust the
    process's thread and stack limits, and XNNPACK's pool then crashes the process."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return THREADS_PER_CPU * max(cpus, 1)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    import torch

    try:
        executorch = version("executorch")
    except PackageNotFoundError:
        executorch = None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "executorch": executorch}
