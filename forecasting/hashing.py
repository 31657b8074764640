"""File digests for artifacts (model folders, the registry's stored versions)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["seal_folder", "sha256_file", "verify_files"]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal_folder(tmp: Path, target: Path, meta: dict[str, Any], *, meta_name: str = "model.json") -> Path:
    """Finish a model folder written in ``tmp``: record every file's sha256 in ``meta["files"]``, write
    ``meta`` as ``meta_name`` (itself unlisted), fsync the files, then put the folder at ``target``
    (replacing it) by a rename.

    Returns ``target``.
    """
    meta["files"] = {f.name: sha256_file(f) for f in sorted(tmp.iterdir()) if f.name != meta_name}
    (tmp / meta_name).write_text(json.dumps(meta, indent=1))
    for f in tmp.iterdir():  # on disk before the rename makes the folder visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def verify_files(folder: Path, files: Any, *, required: Sequence[str]) -> None:
    """Check a folder against its manifest (``{file name: sha256}``) before anything in it is read.

    Raises
    ------
    InvalidInputError
        No manifest or one lacking a ``required`` file, a name that leaves the folder, a
        missing file, or a file whose bytes changed (naming it and both digests' prefixes).
    """
    from forecasting.errors import InvalidInputError

    if not isinstance(files, dict) or any(n not in files for n in required):
        raise InvalidInputError(f"model folder '{folder}' has no complete file manifest (needs {list(required)})",
                                field="model")
    for name, digest in files.items():
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise InvalidInputError(f"model folder '{folder}': bad file name {name!r} in the manifest", field="model")
        actual = sha256_file(folder / name)
        if actual != digest:
            raise InvalidInputError(f"model folder '{folder}': {name} has changed (sha256 {actual[:12]}..., expected "
                                    f"{str(digest)[:12]}...); refusing to load it", field="model")
