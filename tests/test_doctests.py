"""The examples in docstrings are tests (issue 12): every module of the installed ``forecasting``
namespace -- the library, the service (``forecasting.api``, from api/) and the harness
(``forecasting.benchmarks``, from benchmarks/) -- whose source shows an example (``>>>``) runs
them with :mod:`doctest`, one test per module.

Modules are found on disk and only those with an example are imported, so the suite stays fast
(torch, ray and the service are imported only where an example needs them). The flags are
pyproject's ``doctest_optionflags``: ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``. Examples never
touch the network: a connection attempt fails the example.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOTS = ("forecasting", "forecasting.api", "forecasting.benchmarks")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: alembic's migration environment runs migrations when imported; it has no examples
SKIP = {"forecasting.migrations.env"}


def _walk(package: str) -> Iterator[tuple[str, Path]]:
    """``(module name, source file)`` of every module under ``package``, without importing them."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations is not None, package
    if spec.origin:
        yield package, Path(spec.origin)
    for info in pkgutil.iter_modules(list(spec.submodule_search_locations), package + "."):
        if info.name in ROOTS or info.name in SKIP:  # each root is walked once, under its installed name
            continue
        if info.ispkg:
            yield from _walk(info.name)
        elif (sub := importlib.util.find_spec(info.name)) is not None and sub.origin:
            yield info.name, Path(sub.origin)


def _modules_with_examples() -> list[str]:
    return sorted(name for root in ROOTS for name, path in _walk(root)
                  if path.suffix == ".py" and ">>>" in path.read_text(encoding="utf-8"))


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    """The walk sees the library, the service and the harness (a broken walk would pass vacuously)."""
    names = {name for root in ROOTS for name, _ in _walk(root)}
    assert {"forecasting.data", "forecasting.api.app", "forecasting.benchmarks.harness"} <= names
    assert "forecasting.data" in MODULES


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a docstring example tried to open a network connection {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]
    assert tests, f"{name} shows '>>>' but doctest finds no example in it"
    failed = sum(runner.run(test, out=report.append).failed for test in tests)
    assert failed == 0, "".join(report)
