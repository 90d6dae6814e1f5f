"""What machine a figure was measured on: CPU model, cores and the software stack."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


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
