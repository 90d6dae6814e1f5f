"""The test stack is the one constraints.txt pins: the references the tests compare against
(transformers, tokenizers, sentencepiece, scikit-learn, scipy) cannot move with the registry."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            m = PIN.match(line.strip())
            assert m, f"constraints.txt: {line!r} is not NAME==VERSION"
            out[m.group(1)] = m.group(2)
    return out


def test_references_are_pinned() -> None:
    pinned = pins()
    for name in ("transformers", "tokenizers", "sentencepiece", "torch", "executorch", "hypothesis",
                 "scikit-learn", "scipy", "numpy", "pytest", "protobuf"):
        assert name in pinned, f"constraints.txt does not pin {name}"
    assert Version(pinned["transformers"]) >= Version("5.25")  # SentencePiece's user-defined pieces


def test_installed_versions_are_the_pinned_ones() -> None:
    """`make test` installs with `-c constraints.txt`; a venv that drifted is named here."""
    drifted = []
    for name, version in pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            drifted.append(f"{name} not installed (pinned {version})")
            continue
        if Version(installed).public != Version(version).public:
            drifted.append(f"{name} {installed} (pinned {version})")
    assert not drifted, "run `make test` to reinstall the pinned stack: " + ", ".join(drifted)
