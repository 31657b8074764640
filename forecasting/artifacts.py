"""Seal and verify artifact folders: one way to write them, one way to check them, one error.

Every artifact the project keeps on disk is a folder of plain files:

* a saved model folder (:meth:`XGBoostForecaster.save`, the networks' ``save``):
  ``model.json`` holds the model's metadata and, under ``"files"``, the sha256 of every
  other file;
* an ONNX export folder (:func:`forecasting.export.export_model`): the same with
  ``manifest.json`` as the manifest, plus rules on what an export may list
  (:func:`verify_export`);
* a registered version (:class:`forecasting.store.Store`): a copy of a saved folder whose
  digest -- sha256 over ``"<relative path>\\0<file sha256>\\n"`` for every file, sorted by
  relative path -- and per-file sha256 are kept in the database instead of a manifest.

Sealing (:func:`seal`, :func:`copy_sealed`) writes the folder under a temporary sibling
name, fsyncs every file and folder, records the digests and puts it in place with one
rename, so a reader never sees a half-written folder. Verifying (:func:`verify`,
:func:`verify_digest`, :func:`verify_export`) recomputes the sha256 of every file before
anything in the folder is read and compares the file set both ways (a missing file, an
added file and a changed byte are all refused). Every failure raises
:class:`~forecasting.errors.ArtifactIntegrityError` whose message names the folder, the
file and the rule, with ``details`` ``{"path", "file", "expected", "actual"}``.

Only the standard library is imported here: the store, the loader and the ONNX runtime
all use this module without importing any model family.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecasting.errors import ArtifactIntegrityError, ForecastingError, InvalidInputError, InvalidParameterError

__all__ = [
    "check_output",
    "EXPORT_FORMAT",
    "EXPORT_MANIFEST",
    "MODEL_MANIFEST",
    "TEMP_PREFIX",
    "Digest",
    "IntegrityWatch",
    "combine",
    "copy_sealed",
    "digest_folder",
    "plain_files",
    "read_manifest",
    "remove_folder",
    "seal",
    "sha256_file",
    "stat_signature",
    "temp_folder",
    "verify",
    "verify_bytes",
    "verify_digest",
    "verify_export",
    "verify_file",
]

#: The manifest of a saved model folder.
MODEL_MANIFEST = "model.json"
#: The manifest of an ONNX export folder.
EXPORT_MANIFEST = "manifest.json"
#: ``manifest.json["format"]`` of an ONNX export (version 1).
EXPORT_FORMAT = "forecasting-onnx"
#: Prefix of the temporary sibling folders sealing writes into (a crash may leave them; they are never read).
TEMP_PREFIX = ".tmp-"


# --------------------------------------------------------------------------- digests
def sha256_file(path: str | os.PathLike[str]) -> str:
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


def combine(files: Mapping[str, str]) -> str:
    """The folder digest of ``{relative posix path: file sha256}``: sha256 over
    ``"<path>\\0<sha256>\\n"`` for every file, sorted by path (it covers names as well as bytes)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()


def plain_files(folder: str | os.PathLike[str], *,
                error: type[ForecastingError] = InvalidInputError) -> list[tuple[str, Path]]:
    """The regular files under ``folder`` as ``(relative posix path, path)``, sorted by path.

    Raises
    ------
    InvalidInputError (or ``error``)
        The folder holds a symbolic link or something that is neither a file nor a folder
        (only plain files are ever sealed), naming it.
    """
    root = Path(folder)
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            msg = f"artifact folder '{root}': {rel} is a symbolic link; only plain files are stored"
            raise error(msg, field="artifact", details={"path": str(root), "file": rel})
        if p.is_file():
            out.append((rel, p))
        elif not p.is_dir():
            msg = f"artifact folder '{root}': {rel} is not a plain file"
            raise error(msg, field="artifact", details={"path": str(root), "file": rel})
    return sorted(out)


@dataclass(frozen=True)
class Digest:
    """What sealing a folder recorded.

    Attributes
    ----------
    sha256 : str
        The folder digest (:func:`combine` of ``files``).
    files : dict of str to str
        Relative posix path -> hex sha256, for every file.
    size_bytes : int
        Total size of the files, bytes.
    """

    sha256: str
    files: dict[str, str]
    size_bytes: int


def digest_folder(folder: str | os.PathLike[str]) -> Digest:
    """The :class:`Digest` of every plain file under ``folder``.

    Raises
    ------
    InvalidInputError
        The folder is missing or holds symbolic links or special files.
    """
    root = Path(folder)
    if not root.is_dir():
        msg = f"artifact folder '{root}' does not exist"
        raise InvalidInputError(msg, field="artifact")
    files: dict[str, str] = {}
    size = 0
    for rel, p in plain_files(root):
        files[rel] = sha256_file(p)
        size += p.stat().st_size
    return Digest(sha256=combine(files), files=files, size_bytes=size)


# --------------------------------------------------------------------------- sealing
def temp_folder(target: str | os.PathLike[str]) -> Path:
    """A new empty folder beside ``target`` (``.tmp-<name>-<uuid>``) to write an artifact into before
    :func:`seal` or :func:`copy_sealed` renames it into place (the parent is created)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{TEMP_PREFIX}{target.name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    return tmp


def remove_folder(folder: str | os.PathLike[str]) -> None:
    """Delete an artifact folder: renamed aside first (one rename), then removed, so a crash never
    leaves a half-deleted folder at a real artifact's path. A missing folder is not an error."""
    folder = Path(folder)
    if not folder.exists():
        return
    trash = folder.parent / f"{TEMP_PREFIX}deleted-{folder.name}-{uuid.uuid4().hex}"
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _put_in_place(tmp: Path, target: Path) -> None:
    """fsync every file and folder under ``tmp``, then make it ``target`` with one rename (an existing
    ``target`` is renamed aside first and removed after), and fsync the parent."""
    for _, p in plain_files(tmp):
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
    for d in sorted({p for p in tmp.rglob("*") if p.is_dir()} | {tmp}, key=lambda q: len(q.parts), reverse=True):
        _fsync_dir(d)
    trash = None
    if target.exists():
        trash = target.parent / f"{TEMP_PREFIX}replaced-{target.name}-{uuid.uuid4().hex}"
        os.replace(target, trash)
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


#: A folder holding one of these is a saved model, a saved tabular model or an ONNX export.
_OUR_MANIFESTS = (MODEL_MANIFEST, EXPORT_MANIFEST, "metadata.json")


def check_output(target: str | os.PathLike[str], *, field: str = "output") -> None:
    """Refuse an output path that is not ours to replace: only a missing path, an empty folder, a
    saved model folder or an ONNX export folder may be (re)written, never a file or a folder of
    other things (writing a model there would replace what it holds).

    Raises
    ------
    InvalidParameterError
        Naming the path and what it holds; nothing is written.
    """
    path = Path(target)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        names = sorted(p.name for p in path.iterdir())
        if not names or set(names) & set(_OUR_MANIFESTS):
            return
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        msg = (f"{field} '{path}' is a folder of other files ({shown}), not a saved model or an ONNX export: "
               f"choose a new or empty folder (nothing was written)")
    else:
        msg = f"{field} '{path}' is a file, not a model folder: choose a new or empty folder (nothing was written)"
    raise InvalidParameterError(msg, field=field, details={"path": str(path)})


def seal(tmp: str | os.PathLike[str], target: str | os.PathLike[str], meta: dict[str, Any], *,
         manifest: str = MODEL_MANIFEST) -> Path:
    """Finish a folder written in ``tmp``: record every file's sha256 in ``meta["files"]`` (relative
    posix path -> hex digest), write ``meta`` as the ``manifest`` file (itself unlisted), fsync, and
    put the folder at ``target`` (replacing it, if it is a model folder: :func:`check_output`) with one
    rename.

    Parameters
    ----------
    tmp : path
        The folder written so far, beside ``target`` (see :func:`temp_folder`).
    target : path
        Where the sealed folder goes.
    meta : dict
        JSON-serialisable metadata; ``"files"`` is set here.
    manifest : str, default "model.json"
        ``"manifest.json"`` for ONNX exports.

    Returns
    -------
    pathlib.Path
        ``target``.
    """
    tmp, target = Path(tmp), Path(target)
    try:
        check_output(target)
    except InvalidParameterError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta["files"] = {rel: sha256_file(p) for rel, p in plain_files(tmp) if rel != manifest}
    (tmp / manifest).write_text(json.dumps(meta, indent=1))
    _put_in_place(tmp, target)
    return target


def copy_sealed(src: str | os.PathLike[str], target: str | os.PathLike[str]) -> Digest:
    """Copy the plain files of ``src`` to ``target`` durably and atomically, and return their digest.

    The copy goes into a :func:`temp_folder` beside ``target``, every file and folder is fsynced,
    the digest is computed from the copy, and one rename puts it in place (an existing ``target``,
    e.g. left by a crash, is replaced). The digest is for the caller to keep (the store keeps it
    in its database and checks it with :func:`verify_digest`).

    Raises
    ------
    InvalidInputError
        ``src`` is missing, empty, or holds symbolic links or special files.
    """
    src, target = Path(src), Path(target)
    if not src.is_dir():
        msg = f"artifact folder '{src}' does not exist"
        raise InvalidInputError(msg, field="artifact")
    files = plain_files(src)
    if not files:
        msg = f"artifact folder '{src}' is empty"
        raise InvalidInputError(msg, field="artifact")
    tmp = temp_folder(target)
    try:
        for rel, p in files:
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "rb") as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        digest = digest_folder(tmp)
        _put_in_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest


# --------------------------------------------------------------------------- verifying
def _compare(folder: Path, expected: Mapping[str, Any], *, where: str, skip: Collection[str] = (),
             details: Mapping[str, Any] | None = None) -> None:
    """The one check: the plain files under ``folder`` (minus ``skip``) are exactly ``expected``'s
    names, each with the expected sha256 (recomputed now)."""
    base = dict(details or {"path": str(folder)})
    if not folder.is_dir():
        msg = f"{where} is missing"
        raise ArtifactIntegrityError(msg, field="model", details=base)
    actual = dict(plain_files(folder, error=ArtifactIntegrityError))
    for name in skip:
        actual.pop(name, None)
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            msg = f"{where}: file {rel} is missing; refusing to load it"
            raise ArtifactIntegrityError(msg, field="model",
                                         details={**base, "file": rel, "expected": expected[rel], "actual": None})
        if rel not in expected:
            msg = (
                f"{where}: unexpected file {rel} was added (it is not in the manifest); "
                f"refusing to load it"
            )
            raise ArtifactIntegrityError(msg, field="model", details={**base, "file": rel, "expected": None})
        _check_digest(sha256_file(actual[rel]), expected[rel], where=where, file=rel, base=base)


def read_manifest(folder: str | os.PathLike[str], *, manifest: str = MODEL_MANIFEST) -> dict[str, Any]:
    """The JSON object in ``folder/manifest`` (not yet verified).

    Raises
    ------
    ArtifactIntegrityError
        The manifest is missing, unreadable or not a JSON object.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / manifest).read_text())
    except (OSError, ValueError) as exc:
        msg = f"artifact folder '{folder}': {manifest} cannot be read ({exc})"
        raise ArtifactIntegrityError(msg, field="model", details={"path": str(folder), "file": manifest}) from exc
    if not isinstance(meta, dict):
        msg = f"artifact folder '{folder}': {manifest} is not a JSON object"
        raise ArtifactIntegrityError(msg, field="model", details={"path": str(folder), "file": manifest})
    return meta


def verify(folder: str | os.PathLike[str], meta: Mapping[str, Any] | None = None, *,
           manifest: str = MODEL_MANIFEST, required: Collection[str] = (), what: str = "model folder") -> dict[str, Any]:
    """Check a folder sealed by :func:`seal` against its manifest, before anything else in it is read.

    Parameters
    ----------
    folder : path
    meta : dict, optional
        The manifest already read by the caller; read from ``folder/manifest`` when omitted.
    manifest : str, default "model.json"
    required : names
        Files the manifest must list (the model kind's own files).
    what : str, default "model folder"
        What the folder is, for messages (``"export folder"``).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ArtifactIntegrityError
        No manifest or no ``"files"`` in it, a ``required`` file not listed, a listed file
        missing, a file not listed, or a file whose sha256 changed -- naming the file.
    """
    folder = Path(folder)
    data = dict(meta) if meta is not None else read_manifest(folder, manifest=manifest)
    files = data.get("files")
    where = f"{what} '{folder}'"
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        msg = f"{where}: {manifest} has no file manifest (\"files\")"
        raise ArtifactIntegrityError(msg, field="model", details={"path": str(folder), "file": manifest})
    absent = [n for n in required if n not in files]
    if absent:
        msg = (
            f"{where}: {manifest} does not list {absent}, which this kind of folder "
            f"always holds"
        )
        raise ArtifactIntegrityError(msg, field="model", details={"path": str(folder), "file": absent[0]})
    _compare(folder, files, where=where, skip=(manifest,))
    return data


def verify_digest(folder: str | os.PathLike[str], *, files: Mapping[str, str], sha256: str, where: str,
                  details: Mapping[str, Any] | None = None) -> None:
    """Check a folder copied by :func:`copy_sealed` against the digests recorded then.

    Parameters
    ----------
    folder : path
    files : dict of str to str
        The recorded per-file sha256 (:attr:`Digest.files`).
    sha256 : str
        The recorded folder digest (:attr:`Digest.sha256`).
    where : str
        What the folder is, for messages (``"artifact of model 'demand@3' (acme/demand/3)"``).
    details : dict, optional
        Base of the error's ``details`` (default ``{"path": folder}``).

    Raises
    ------
    ArtifactIntegrityError
        The folder is gone, a file is missing, added or changed, or the file list does not
        match the folder digest.
    """
    folder = Path(folder)
    _compare(folder, files, where=where, details=details)
    if combine(files) != sha256:
        msg = f"{where}: the file list does not match the recorded digest"
        raise ArtifactIntegrityError(msg, field="model",
                                     details={**(details or {"path": str(folder)}), "expected": sha256})


def verify_file(path: str | os.PathLike[str], sha256: str, *, where: str) -> None:
    """Check one file against its recorded sha256 (an artifact that records a single file's digest).

    Raises
    ------
    ArtifactIntegrityError
        The file is missing or its sha256 differs, naming it.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{where}: file {path.name} is missing; refusing to load it"
        raise ArtifactIntegrityError(msg, field="model", details={"path": str(path.parent), "file": path.name,
                                                                  "expected": sha256, "actual": None})
    _check_digest(sha256_file(path), sha256, where=where, file=path.name, base={"path": str(path.parent)})


def verify_bytes(data: bytes, sha256: str, *, where: str, folder: str | os.PathLike[str], file: str) -> None:
    """Check bytes already read from ``folder/file`` against the file's recorded sha256 (so what is checked
    is what will be used, with no second read).

    Raises
    ------
    ArtifactIntegrityError
        The sha256 differs, naming the file.
    """
    _check_digest(hashlib.sha256(data).hexdigest(), sha256, where=where, file=file, base={"path": str(folder)})


def _check_digest(digest: str, sha256: str, *, where: str, file: str, base: Mapping[str, Any]) -> None:
    """The one "file has changed" refusal."""
    if digest != sha256:
        msg = (f"{where}: file {file} has changed (sha256 {digest[:12]}..., expected {str(sha256)[:12]}...); "
               f"refusing to load it")
        raise ArtifactIntegrityError(msg, field="model",
                                     details={**base, "file": file, "expected": sha256, "actual": digest})


#: graphs an export of each kind writes (xgboost: booster_0.onnx, booster_1.onnx, ...)
_EXPORT_GRAPHS = {"tabular": ["model.onnx"], "nhits": ["network.onnx"], "tft": ["network.onnx"],
                  "tsmixer": ["network.onnx"]}
#: native-state files an export of each kind keeps beside its graphs
_EXPORT_STATE = {"tabular": ["metadata.json"]}
_FORECASTER_STATE = ["model.json", "pipeline.json", "history.parquet"]


def verify_export(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Check an ONNX export folder (:func:`forecasting.export.export_model`) before it is loaded.

    :func:`verify` against ``manifest.json``, then, since the manifest itself carries no
    signature, the rules on what it may say: format ``forecasting-onnx`` v1, the graphs an
    export of its kind writes (all listed), the native-state files of its kind, and a
    ``quantized`` entry only for the int8 network graph.

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ArtifactIntegrityError
        Any of the above fails, naming the file or the manifest entry.
    """
    folder = Path(folder)
    meta = read_manifest(folder, manifest=EXPORT_MANIFEST)
    where = f"export folder '{folder}'"

    def refuse(rule: str) -> ArtifactIntegrityError:
        return ArtifactIntegrityError(f"{where}: {rule}", field="model",
                                      details={"path": str(folder), "file": EXPORT_MANIFEST})

    if meta.get("format") != EXPORT_FORMAT or meta.get("format_version") != 1:
        msg = f"{EXPORT_MANIFEST} is not of format {EXPORT_FORMAT} v1"
        raise refuse(msg)
    if not meta.get("files"):
        msg = f"{EXPORT_MANIFEST} has no file manifest"
        raise refuse(msg)
    verify(folder, meta, manifest=EXPORT_MANIFEST, what="export folder")
    files = meta["files"]
    kind, graphs = meta.get("kind"), meta.get("graphs")
    if str(kind) not in _EXPORT_GRAPHS:  # a global tree model (xgboost): booster_0.onnx, booster_1.onnx, ...
        ok = isinstance(graphs, list) and bool(graphs) and graphs == [f"booster_{i}.onnx" for i in range(len(graphs))]
    else:
        ok = graphs == _EXPORT_GRAPHS.get(str(kind))
    if not ok or not isinstance(graphs, list):
        msg = f"manifest lists graphs {graphs!r} for a {kind!r} model, which an export never writes"
        raise refuse(msg)
    for graph in graphs:
        if graph not in files:
            msg = f"graph {graph!r} is not in the manifest"
            raise refuse(msg)
    q = meta.get("quantized")
    if q is not None and (not isinstance(q, dict) or q.get("graph") != "network.int8.onnx"
                          or q["graph"] not in files):
        msg = "bad quantized entry in the manifest"
        raise refuse(msg)
    missing = [n for n in _EXPORT_STATE.get(str(kind), _FORECASTER_STATE) if n not in files]
    if missing:
        msg = f"{missing} missing from the manifest"
        raise refuse(msg)
    return meta


# --------------------------------------------------------------------------- watching loaded folders
def stat_signature(folder: str | os.PathLike[str]) -> str:
    """A cheap fingerprint of a folder's files from ``stat`` alone (no file is read): the sha256 of
    every entry's relative path, size, modification time (ns) and inode.

    Rewriting, adding, removing or replacing a file changes it (unless the size and the
    nanosecond mtime are forged too); it is the trigger for a full re-verification
    (:class:`IntegrityWatch`, the model cache keys of :mod:`forecasting.loading`), never a
    substitute for one. A missing folder gives ``"missing"``.
    """
    root = os.fspath(folder)
    entries: list[str] = []
    try:
        _stat_entries(root, "", entries)
    except OSError:  # the folder (or a subfolder) is gone or unreadable
        return "missing"
    entries.sort()
    return hashlib.sha256("".join(entries).encode()).hexdigest()


def _stat_entries(folder: str, prefix: str, out: list[str]) -> None:
    """``"<relative path>\\0<size>\\0<mtime ns>\\0<inode>\\n"`` of every entry under ``folder`` (one
    ``scandir`` per folder, ``lstat`` semantics: links are not followed)."""
    with os.scandir(folder) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            rel = prefix + entry.name
            out.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n")
            if entry.is_dir(follow_symlinks=False):
                _stat_entries(entry.path, rel + "/", out)


class IntegrityWatch:
    """The artifact folders a process has loaded, re-verified when their files change, and the
    integrity failures seen (what ``/readyz`` reports).

    :mod:`forecasting.loading` calls :meth:`watch` after a verified load and :meth:`fail`
    when a load is refused; :meth:`check` compares each watched folder's
    :func:`stat_signature` with the one recorded and, when it changed, runs the folder's full
    verification again (sha256 of every file against the recorded digests). Thread-safe.
    """

    def __init__(self) -> None:
        self._watched: dict[str, tuple[str, Path, Callable[[], object]]] = {}
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()

    def watch(self, key: str, folder: str | os.PathLike[str], verify: Callable[[], object]) -> None:
        """Remember a folder that verified and was loaded (``verify`` re-checks it; raises
        :class:`~forecasting.errors.ArtifactIntegrityError`)."""
        with self._lock:
            self._watched[key] = (stat_signature(folder), Path(folder), verify)
            self._failures.pop(key, None)

    def fail(self, key: str, message: str) -> None:
        """Record an integrity failure of ``key`` (kept until it verifies again or is forgotten)."""
        with self._lock:
            self._failures[key] = message

    def forget(self, key: str) -> None:
        """Stop watching ``key`` and drop its failure (the artifact was deleted)."""
        with self._lock:
            self._watched.pop(key, None)
            self._failures.pop(key, None)

    def check(self) -> list[str]:
        """Re-verify every watched folder whose files changed; return the failures (one line each).

        A watched folder that is gone is forgotten (a deleted version), not a failure.
        """
        with self._lock:
            watched = dict(self._watched)
        for key, (signature, folder, verify) in watched.items():
            now = stat_signature(folder)
            if now == signature:
                continue
            if now == "missing":
                self.forget(key)
                continue
            try:
                verify()
            except ArtifactIntegrityError as exc:
                self.fail(key, exc.message)
            else:
                self.watch(key, folder, verify)
        with self._lock:
            return [f"{key}: {message}" for key, message in sorted(self._failures.items())]
