"""Wheels of distributions already installed here, so pip can build offline.

``pip install --no-index --find-links FOLDER`` then resolves the Lambda's
requirements from this machine's own environment instead of the package
index: the same versions the tests run against, no download. Each wheel is
put back together from the files the installed distribution's ``RECORD``
lists and the tags its ``WHEEL`` file names. Console scripts (outside
site-packages) are left out; the Lambda package does not use them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name

__all__ = ["closure", "write_wheelhouse"]


def closure(names: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``names`` need, themselves included."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [canonicalize_name(name) for name in names]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        distribution = importlib.metadata.distribution(name)
        found[name] = distribution
        for line in distribution.requires or ():
            requirement = Requirement(line)
            # Extras are not asked for; markers are this interpreter's.
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(requirement.name))
    return list(found.values())


def write_wheelhouse(folder: Path, names: Iterable[str]) -> Path:
    """Write a wheel for each distribution of ``closure(names)`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for distribution in closure(names):
        _write_wheel(folder, distribution)
    return folder


def _write_wheel(folder: Path, distribution: importlib.metadata.Distribution) -> Path:
    wheel_text = distribution.read_text("WHEEL") or ""
    tags = [
        tag
        for line in wheel_text.splitlines()
        if line.startswith("Tag:")
        for tag in parse_tag(line.partition(":")[2].strip())
    ]
    # The compressed tag set of the file name: py2.py3-none-any and the like.
    tag_text = "-".join(
        ".".join(sorted({getattr(tag, part) for tag in tags}))
        for part in ("interpreter", "abi", "platform")
    )
    name = canonicalize_name(distribution.metadata["Name"]).replace("-", "_")
    path = folder / f"{name}-{distribution.version}-{tag_text}.whl"
    records: list[str] = []
    record_name = ""
    # Stored, not deflated: the wheels live for one test session.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as wheel:
        for file in distribution.files or ():
            text = file.as_posix()
            if text.startswith("..") or "__pycache__" in file.parts:
                continue
            if file.name == "RECORD" and file.parent.name.endswith(".dist-info"):
                record_name = text
                continue
            data = Path(str(file.locate())).read_bytes()
            wheel.writestr(text, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{text},sha256={digest.decode()},{len(data)}")
        records.append(f"{record_name},,")
        wheel.writestr(record_name, "\n".join(records) + "\n")
    return path
