"""The one loader: a saved model folder, an ONNX export folder or a registered version.

The CLI (``--model <folder>``), the API and the job worker all load through here, so a
folder is recognised, verified and loaded by one set of rules:

* ``manifest.json`` -- an ONNX export (:func:`forecasting.export.export_model`), loaded by
  :func:`forecasting.runtime.load_onnx` after :func:`forecasting.artifacts.verify_export`;
* ``metadata.json`` -- a tabular model (:meth:`forecasting.tabular.TabularModel.save`);
* ``model.json`` -- a forecaster saved by its ``save`` (``xgboost``, ``nhits``, ``tft``, ``tsmixer``):
  the class named by ``model.json["model"]`` in :data:`forecasting.models.registry.REGISTRY`
  loads it, after :func:`forecasting.artifacts.verify` checked every file's sha256.

A registered version (:func:`load_version`) is its store folder checked against the
digests in the database (:meth:`forecasting.store.Store.artifact_path`) and then loaded by
:func:`load`; loaded models are kept in the store's LRU cache
(:attr:`forecasting.store.Store.cache`). :func:`load_serving` serves a version from its
ONNX export when one was made (:func:`export_version`), else natively. An export's digest is
recorded in the database with its version when it is made and checked on every load, like
the native artifact's: rewriting an export's files *and* its manifest is refused.

Cached models are keyed by their folder's :func:`~forecasting.artifacts.stat_signature`
(sizes, mtimes, inodes; no file read), so a file changed after loading makes the next
request load -- and verify -- again instead of serving the cached model; the folders loaded
are watched by ``store.integrity`` (:class:`~forecasting.artifacts.IntegrityWatch`), which
``/readyz`` asks to re-verify what changed and which remembers every integrity failure.

Models loaded for serving (:func:`load_version`, :func:`load_serving`) predict with
:data:`forecasting.runtime.SERVING_THREADS` threads (:func:`forecasting.runtime.limit_threads`):
concurrent requests do not stall each other; and :func:`load_serving` answers a large request
natively even when an export exists (:func:`forecasting.runtime.choose_runtime`).

Every integrity failure is :class:`~forecasting.errors.ArtifactIntegrityError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from forecasting import artifacts
from forecasting.errors import ArtifactIntegrityError, CapabilityError, InvalidInputError

if TYPE_CHECKING:
    from forecasting.models.base import Forecaster
    from forecasting.store import Store, VersionInfo
    from forecasting.tabular import TabularModel

__all__ = ["Runtime", "export_version", "folder_kind", "load", "load_serving", "load_version"]

#: How a loaded model answers: its own library, or ONNX Runtime from an export.
Runtime = Literal["native", "onnxruntime"]
FolderKind = Literal["onnx", "tabular", "forecaster"]


def folder_kind(path: str | os.PathLike[str]) -> FolderKind:
    """What a folder holds, from the file that describes it: ``"onnx"`` (``manifest.json``),
    ``"tabular"`` (``metadata.json``) or ``"forecaster"`` (``model.json``).

    Raises
    ------
    InvalidInputError
        Not a folder, or none of those files is there.
    """
    folder = Path(path)
    if (folder / artifacts.EXPORT_MANIFEST).is_file():
        return "onnx"
    if (folder / "metadata.json").is_file():
        return "tabular"
    if (folder / artifacts.MODEL_MANIFEST).is_file():
        return "forecaster"
    what = "is not a folder" if not folder.is_dir() else "holds no manifest.json, metadata.json or model.json"
    msg = (
        f"'{folder}' is not a saved model folder: it {what} (write one with `forecasting train "
        f"--output FOLDER`, a model's save() or export_model())"
    )
    raise InvalidInputError(msg, field="model")


def load(path: str | os.PathLike[str], *, device: str = "cpu") -> Forecaster | TabularModel:
    """Load a saved model folder of any kind, or an ONNX export folder, verified before it is read.

    Parameters
    ----------
    path : folder
        Written by a forecaster's ``save`` (``xgboost``, ``nhits``, ``tft``, ``tsmixer``),
        :meth:`TabularModel.save <forecasting.tabular.TabularModel.save>` or
        :func:`forecasting.export.export_model`.
    device : str, default "cpu"
        Where a native model predicts (an ONNX export always runs on the CPU).

    Returns
    -------
    Forecaster or TabularModel
        Ready to ``predict``; an ONNX export gives an :class:`~forecasting.runtime.OnnxForecaster`
        (or :class:`~forecasting.runtime.OnnxTabularModel`) that forecasts like the model it was
        exported from.

    Raises
    ------
    InvalidInputError
        Not a saved model folder, or a model name this library does not know.
    ArtifactIntegrityError
        A file changed, is missing or was added since the folder was sealed (naming it).
    CapabilityError
        The folder names a model that cannot be loaded from a folder.
    """
    folder = Path(path)
    kind = folder_kind(folder)
    if kind == "onnx":
        from forecasting.runtime import load_onnx

        return load_onnx(folder)  # verify_export first
    if kind == "tabular":
        from forecasting.tabular import TabularModel

        return TabularModel.load(folder, device=device)
    meta = artifacts.read_manifest(folder)
    from forecasting.models.registry import REGISTRY

    name = meta.get("model")
    if not isinstance(name, str) or name not in REGISTRY:
        msg = (
            f"'{folder}' holds model {name!r}, which cannot be loaded from a folder "
            f"(known: {', '.join(REGISTRY)})"
        )
        raise InvalidInputError(msg, field="model")
    return REGISTRY[name].load().load(folder, device=device)  # verifies every file against model.json first


def load_version(store: Store, info: VersionInfo) -> Forecaster | TabularModel:
    """The fitted model of a registered version, ready to predict.

    * with an artifact (global forecasters, tabular models): the store folder checked against
      the digests recorded at registration (:meth:`Store.artifact_path
      <forecasting.store.Store.artifact_path>`), then :func:`load` on the CPU;
    * spec-only (statistical models): a new unfitted model built from the stored spec and the
      training ``freq``; it fits on the history at forecast time.

    Loaded models are kept in ``store.cache`` (LRU, ``cache_size`` entries) keyed by (artifact
    path, digest, stat signature of its files); a cache hit re-reads no file, but a file changed
    since the load (size, mtime or inode) is a miss, so the folder is verified again. Treat the returned
    model as read-only: it is shared by every caller. It predicts with
    :data:`~forecasting.runtime.SERVING_THREADS` threads.

    Raises
    ------
    ArtifactIntegrityError
        The artifact fails its digest (never loaded).
    InvalidInputError
        The adapter refuses the folder (damaged beyond the digest, e.g. unsupported format).
    """
    if info.artifact is None:
        from forecasting.models.registry import make_model

        return make_model(info.spec, freq=info.fingerprint.get("freq"))
    artifact = info.artifact
    signature = artifacts.stat_signature(store.artifacts_dir / artifact)

    def verified() -> Path:
        return _checked(store, artifact, lambda: store.artifact_path(info))

    def load_it() -> Forecaster | TabularModel:
        from forecasting.runtime import limit_threads

        folder = verified()
        model = limit_threads(load(folder))  # one thread per request (serving)
        store.integrity.watch(artifact, folder, verified)
        return model

    return store.cache.get_or_load((artifact, f"{info.sha256}:{signature}"), load_it)


def _checked(store: Store, key: str, verify: Callable[[], Path]) -> Path:
    """``verify()``, recording an integrity failure in ``store.integrity`` before re-raising it."""
    try:
        return verify()
    except ArtifactIntegrityError as exc:
        store.integrity.fail(key, exc.message)
        raise


def _verify_export(store: Store, info: VersionInfo, folder: Path) -> Path:
    """The export folder checked against the digest recorded in the database, then its own manifest rules."""
    assert info.export_sha256 is not None  # callers check that an export was recorded

    def verify() -> Path:
        artifacts.verify_digest(folder, files=info.export_files, sha256=info.export_sha256 or "",
                                where=f"ONNX export of model '{info.ref}' ({folder.name})",
                                details={"path": str(folder)})
        artifacts.verify_export(folder)
        return folder

    return _checked(store, str(folder), verify)


def export_version(store: Store, info: VersionInfo) -> Path:
    """The version's ONNX export folder (:func:`forecasting.export.export_model`), made on first request.

    The export sits beside the artifact (:meth:`Store.export_dir <forecasting.store.Store.export_dir>`,
    ``<version>.onnx/``) with its own sha256 manifest, verified on every use; the native artifact
    is verified (:func:`load_version`) before exporting.

    Raises
    ------
    CapabilityError
        Spec-only (statistical) versions and models without an ONNX export.
    ArtifactIntegrityError
        A damaged artifact or export.
    ExportParityError
        The graph does not reproduce the model.
    """
    folder = store.export_dir(info)
    if folder is None:
        msg = (
            f"model '{info.ref}' is a statistical model refit from each request's history: "
            f"there is no trained graph to export"
        )
        raise CapabilityError(msg, field="model")
    with store.export_lock:
        if (folder / artifacts.EXPORT_MANIFEST).is_file():
            recorded = store.get(info.ref, tenant=info.tenant)  # the digest may be newer than the caller's info
            if recorded.export_sha256 is not None:
                return _verify_export(store, recorded, folder)
            artifacts.remove_folder(folder)  # an export the database never recorded is never trusted: made again
        if info.kind == "tabular":
            msg = "ONNX export of tabular models is not available yet"
            raise CapabilityError(msg, field="model")
        from forecasting.export import export_model

        export_model(load_version(store, info), folder)
        store.record_export(info, artifacts.digest_folder(folder))
    return folder


def load_serving(store: Store, info: VersionInfo, *,
                 n_series: int | None = None) -> tuple[Forecaster | TabularModel, Runtime]:
    """The model to forecast a version with, and its runtime: the ONNX export when one was made
    (:func:`export_version`) and the request is small enough, else the native model
    (:func:`load_version`).

    The export is used only when its digest was recorded in the database (:func:`export_version`);
    it is checked against that digest and its manifest before it is loaded. ONNX models share the
    store's cache, keyed by the recorded digest and the folder's stat signature. Either runtime
    predicts with :data:`~forecasting.runtime.SERVING_THREADS` threads.

    Parameters
    ----------
    store : Store
    info : VersionInfo
    n_series : int, optional
        Series in the request; above :data:`~forecasting.runtime.ONNX_MAX_SERIES` the native
        model answers (:func:`~forecasting.runtime.choose_runtime`). None: counted as small.

    Raises
    ------
    ArtifactIntegrityError
        The export or the artifact fails its digests (never loaded).
    """
    from forecasting.runtime import SERVING_THREADS, choose_runtime

    folder = store.export_dir(info) if info.kind == "forecast" else None
    has_export = folder is not None and info.export_sha256 is not None
    if folder is not None and choose_runtime(n_series, has_export=has_export) == "onnxruntime":
        from forecasting.runtime import load_onnx

        export = folder
        signature = artifacts.stat_signature(export)

        def verified() -> Path:
            return _verify_export(store, info, export)

        def load_it() -> Forecaster:
            model = load_onnx(verified(), threads=SERVING_THREADS)
            store.integrity.watch(str(export), export, verified)
            return model

        return store.cache.get_or_load((str(export), f"{info.export_sha256}:{signature}"), load_it), "onnxruntime"
    return load_version(store, info), "native"
