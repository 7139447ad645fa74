"""Checksums of data files, computed once per file version.

Hashing the real data sets costs a few hundred megabytes of reading, so a file's MD5 is remembered
with the size, modification time and inode it had when hashed. A file that changes in any of these
is hashed again; one that does not is trusted to be the bytes that were hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from grader.data.catalog import KnownFile
from grader.errors import GraderError
from grader.fsutil import atomic_write
from grader.paths import cache_dir

CHUNK = 1 << 20


def stamp_file() -> Path:
    """Where remembered checksums live (one JSON file in the grader's cache)."""
    return cache_dir() / "data-checksums.json"


def md5_of(path: Path) -> str:
    """The MD5 of ``path``, from the remembered stamps when the file has not changed since."""
    path = path.resolve()
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    stamps = _load_stamps()
    known = stamps.get(str(path))
    if known and all(known.get(k) == v for k, v in stamp.items()):
        return known["md5"]
    digest = hash_file(path)
    stamps[str(path)] = stamp | {"md5": digest}
    _save_stamps(stamps)
    return digest


def hash_file(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
    return md5.hexdigest()


def verify(path: Path, expected: KnownFile, how_to_replace: str) -> None:
    """Raise a ``GraderError`` naming ``path`` unless it is the published file ``expected``.

    The size is compared first (free, and it explains truncated copies); then the checksum.
    """
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        raise GraderError(f"{expected.name} is corrupted or not the published file: {size:,} bytes, "
                          f"expected {expected.size:,}", where=str(path), hint=how_to_replace)
    digest = md5_of(path)
    if digest != expected.md5:
        raise GraderError(f"{expected.name} is corrupted or not the published file: MD5 {digest}, "
                          f"expected {expected.md5}", where=str(path), hint=how_to_replace)


def _load_stamps() -> dict[str, dict]:
    try:
        loaded = json.loads(stamp_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no stamps yet, or a damaged file: hashing again is always safe
    return loaded if isinstance(loaded, dict) else {}


def _save_stamps(stamps: dict[str, dict]) -> None:
    # Stamps of files that are gone would only grow the file; two graders racing here lose at most
    # one stamp each, which costs a second hash, never a wrong answer.
    alive = {p: s for p, s in stamps.items() if os.path.exists(p)}
    try:
        atomic_write(stamp_file(), json.dumps(alive, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache only means hashing again next time
