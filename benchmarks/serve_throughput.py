"""Forecast throughput of the server at 1 and 8 clients, with one or several server processes (issue 14).

Starts ``forecasting serve --workers N`` (default: one process per core) on a free loopback
port with a temporary state folder, trains an XGBoost model through ``POST /v1/models``
(M4 Hourly's first series, or synthetic hourly series), exports it to ONNX (so registered
forecasts are answered by ONNX Runtime, as a deployment serving exports would be), then
loads two routes in turn with the same request -- one series of 700 points, ``h=48``:

* **inline**: ``POST /v1/forecast`` with ``--inline-model`` (default ``seasonal_naive``);
* **registered**: ``POST /v1/models/{ref}/forecast`` with the series as ``history``.

Before each route is measured, it is loaded for :data:`WARM_S` seconds at the largest client count, so every
server process has loaded what it serves. The server's output (its access and event lines) goes to a log
file beside the state folder, kept after the run: its path is printed, and its tail on a failure.

For each route and each client count it prints requests/s, p50 and p99 latency (ms),
errors and the machine's load average at the end of the level (``os.getloadavg``: the
figures are only comparable at a similar load), then the ratio of requests/s at the
largest client count to one client. Targets (issue 14): 8 clients >= 1.8x the requests/s of
one on 2 cores; p50 at one client <= 5 ms for the exported series.

``--soak SECONDS``: a bounded soak instead -- 16 clients for SECONDS on each route, with
the resident memory of the server's process tree (the server processes and any job
worker) at the start and the end.

``--threads``: no server; 8 threads of one process predicting with one loaded XGBoost model,
with every thread per call (the library's default) and with one (what serving uses).

``--spans CALLS``: no server; one registered forecast's service call timed in this process, span by span
(reference lookup, cached model and its stat check, validation + features + onnxruntime, the served-forecast
record, the answer's encoding) beside the inline route's service call.

``--crossover``: no server; native XGBoost against its ONNX export, one thread each, by
the number of series in a request (what :data:`forecasting.runtime.ONNX_MAX_SERIES` is set
from).

The load generator is ``benchmarks/load_forecast.py``'s (wrk when on the PATH, else httpx
async clients in this process -- which then takes CPU from the server on a small machine:
say so beside the figures).

Run: ``python -m forecasting.benchmarks.serve_throughput [--workers 2] [--clients 1 8]
[--duration 10] [--soak 180] [--crossover] [--spans 200]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import numpy as np
import polars as pl

from forecasting.benchmarks import load_forecast as lf

if TYPE_CHECKING:
    from forecasting.models.base import Forecaster


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (Linux /proc), parents first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children") if Path(f"/proc/{p}/task").is_dir() else []:
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return out


def tree_rss_mb(pid: int) -> str:
    """Resident memory of a process and all its descendants (Linux /proc): "<total> MiB in <n> processes"."""
    total, count = 0.0, 0
    for p in _tree(pid):
        rss = lf._rss_mb(p)
        count += rss == rss
        total += 0.0 if rss != rss else rss  # NaN: gone meanwhile
    return f"{total:.0f} MiB in {count} processes"


def tree_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system, every thread) used so far by a process and each living descendant, by pid
    (Linux ``/proc/<pid>/stat`` fields 14 and 15)."""
    out = {}
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        out[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_since(pid: int, before: dict[int, float]) -> float:
    """CPU seconds the process tree of ``pid`` used since ``before`` (:func:`tree_cpu_s`): per living process
    (one that exited meanwhile, e.g. an idle job worker, takes its time with it instead of subtracting it)."""
    return sum(cpu - before.get(p, 0.0) for p, cpu in tree_cpu_s(pid).items())


#: Seconds of warm-up load on each route at the largest client count before it is measured.
WARM_S = 3.0


def _load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _bodies(frame: pl.DataFrame, inline_model: Any) -> tuple[bytes, bytes]:
    """(registered request, inline request): one series of 700 points, h=48."""
    registered = lf.request_body(frame)
    history = json.loads(registered)["history"]
    return registered, json.dumps({"h": lf.H, "data": history, "model": inline_model}).encode()


def measure(base: str, routes: dict[str, tuple[str, bytes]], clients: list[int], duration: float,
            tool: str, *, pid: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each route at each client count; prints a Markdown table per route and returns the rows.

    With the server's ``pid``, also the server's CPU time per request (every process and thread of its tree,
    ms): what a request costs whatever the machine's load, unlike its latency."""
    run = lf.run_wrk if tool == "wrk" else lf.run_python
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (path, body) in routes.items():
        warm = httpx.post(base + path, content=body, headers={**lf.HEADERS, "Content-Type": "application/json"},
                          timeout=120)
        if warm.status_code != 200:
            msg = f"{name}: warm-up request failed: {warm.status_code} {warm.text[:500]}"
            raise SystemExit(msg)
        # every server process's first request of a route loads what it serves (the registered model): the
        # largest client count's connections for WARM_S spread over the processes as the measurement's will
        # (one request warmed one process of --workers N)
        warmed = run(base + path, body, clients=max(clients), duration=WARM_S)
        if warmed["errors"]:
            msg = f"{name}: {warmed['errors']:.0f} errors while warming up every server process"
            raise SystemExit(msg)
        print(f"\n{name}: POST {path}, one series of {lf.N_POINTS} points, h={lf.H}, {duration:g} s per level\n")
        print("| clients | requests | requests/s | p50 ms | p99 ms | errors | server CPU ms/request | "
              "load average (1, 5, 15 min) |")
        print("|--------:|---------:|-----------:|-------:|-------:|-------:|--:|---|")
        rows = []
        for c in clients:
            before = tree_cpu_s(pid) if pid is not None else {}
            stats: dict[str, Any] = {"clients": c, **run(base + path, body, clients=c, duration=duration),
                                     "load": _load()}
            used = cpu_since(pid, before) if pid is not None else float("nan")
            stats["cpu_ms"] = used / max(1, stats["requests"]) * 1e3
            rows.append(stats)
            print(f"| {c} | {stats['requests']:.0f} | {stats['rps']:.1f} | {stats['p50_ms']:.1f} | "
                  f"{stats['p99_ms']:.1f} | {stats['errors']:.0f} | {stats['cpu_ms']:.2f} | {stats['load'][5:]} |",
                  flush=True)
        if len(rows) > 1 and rows[0]["rps"] > 0:
            print(f"\n{name}: {rows[-1]['clients']} clients / 1 client = {rows[-1]['rps'] / rows[0]['rps']:.2f}x "
                  f"requests/s")
        out[name] = rows
    return out


def crossover(sizes: list[int], n_estimators: int) -> None:
    """Native XGBoost vs its ONNX export by request size, one thread each (serving); prints a table."""
    from forecasting.export import export_model
    from forecasting.loading import load
    from forecasting.models.registry import make_model
    from forecasting.runtime import SERVING_THREADS, limit_threads, load_onnx

    rng = np.random.default_rng(0)
    n, points = max(sizes), 300
    t = np.arange(1, points + 1)
    frame = pl.concat([pl.DataFrame({"unique_id": f"S{i:04d}", "ds": t,
                                     "y": 100 + 10 * (i % 50) + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, t.size)})
                       for i in range(n)])
    model = make_model({"name": "xgboost", "params": {"season_length": 24, "n_estimators": n_estimators,
                                                      "conformal_windows": 0}}, freq=1)
    model.fit(frame)
    folder = Path(tempfile.mkdtemp(prefix="forecasting-crossover-"))
    try:
        model.save(folder / "native")
        export_model(model, folder / "onnx")
        runtimes = {"native": limit_threads(load(folder / "native")),
                    "onnx": load_onnx(folder / "onnx", threads=SERVING_THREADS)}
        ids = frame["unique_id"].unique(maintain_order=True).to_list()
        print(f"\nXGBoost {n_estimators} trees, predict(48, history=...) with one thread, median of 5 calls\n")
        print("| series | native ms | ONNX ms | ONNX / native | load average |")
        print("|-------:|----------:|--------:|--------------:|---|")
        for size in sizes:
            history = frame.filter(pl.col("unique_id").is_in(ids[:size]))
            ms = {}
            for name, m in runtimes.items():
                m.predict(48, history=history)
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    m.predict(48, history=history)
                    times.append(time.perf_counter() - start)
                ms[name] = statistics.median(times) * 1e3
            print(f"| {size} | {ms['native']:.1f} | {ms['onnx']:.1f} | {ms['onnx'] / ms['native']:.2f} | "
                  f"{_load()[5:]} |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def thread_stalls(clients: int, seconds: float, n_estimators: int) -> None:
    """Concurrent predictions of one loaded XGBoost model with every thread (the library's default) and
    with one per call (:func:`forecasting.runtime.limit_threads`): ``clients`` threads of this process call
    ``predict(48, history=one series)`` for ``seconds`` each way, as a server's request threads would;
    prints calls/s, p50 and p99."""
    import threading

    from forecasting.loading import load
    from forecasting.models.registry import make_model
    from forecasting.runtime import limit_threads

    frame, _ = lf.training_data(8, synthetic=True)
    model = make_model({"name": "xgboost", "params": {"season_length": 24, "n_estimators": n_estimators,
                                                      "conformal_windows": 0}}, freq=1).fit(frame)
    one = frame.filter(pl.col("unique_id") == "S0")
    folder = Path(tempfile.mkdtemp(prefix="forecasting-threads-"))
    try:
        model.save(folder / "m")
        print(f"\nXGBoost {n_estimators} trees, {clients} threads calling predict(48, history=700 points) for "
              f"{seconds:g} s\n")
        print("| threads per call | calls/s | p50 ms | p99 ms | load average |")
        print("|---|--:|--:|--:|---|")
        runs: list[tuple[str, Any]] = [("all (default)", load(folder / "m")),
                                       ("1 (serving)", limit_threads(load(folder / "m")))]
        for label, loaded in runs:
            loaded.predict(48, history=one)
            times: list[float] = []
            end = time.perf_counter() + seconds

            def call(loaded: Any = loaded, times: list[float] = times, end: float = end) -> None:
                while time.perf_counter() < end:
                    start = time.perf_counter()
                    loaded.predict(48, history=one)
                    times.append(time.perf_counter() - start)

            threads = [threading.Thread(target=call) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            q = statistics.quantiles(times, n=100, method="inclusive")
            print(f"| {label} | {len(times) / seconds:.1f} | {q[49] * 1e3:.1f} | {q[98] * 1e3:.1f} | {_load()[5:]} |",
                  flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def spans(repeats: int, n_estimators: int) -> None:
    """Where one registered forecast's time goes, in this process (no server, no HTTP): the service call and
    its parts on the benchmark's request (XGBoost from its ONNX export, one series of 700 points, h=48),
    against the inline route's service call; prints min and median wall time and the median CPU time of the
    calling thread (less sensitive to the machine's load) per span, in ms."""
    import msgspec

    from forecasting.api.mapping import forecast_out
    from forecasting.loading import export_version, load_serving
    from forecasting.service.core import Limits, forecast, forecast_fitted
    from forecasting.service.monitoring import Monitoring
    from forecasting.service.registered import RegisteredModels
    from forecasting.service.results import Registered
    from forecasting.service.training import fit_and_save
    from forecasting.store import Store

    frame, _ = lf.training_data(8, synthetic=True)
    spec = {"name": "xgboost", "params": {"season_length": 24, "n_estimators": n_estimators}}
    history = json.loads(lf.request_body(frame))["history"]
    folder = Path(tempfile.mkdtemp(prefix="forecasting-spans-"))
    store = Store(f"sqlite:///{folder / 'db.sqlite'}", folder / "artifacts")
    try:
        fit_and_save(frame, folder / "saved", model=spec, freq=1)
        info = store.register_version("load", tenant="load", spec=spec, kind="forecast",
                                      artifact_src_dir=folder / "saved", fingerprint={"freq": 1, "series": 8})
        export_version(store, info)
        limits = Limits()
        services = RegisteredModels(store=store, runner=None, limits=limits)  # type: ignore[arg-type]
        monitoring = Monitoring(store, limits, background=False)
        info = store.get("load", tenant="load")
        loaded, runtime = load_serving(store, info, n_series=1)
        model = cast("Forecaster", loaded)  # a forecast version
        result = forecast_fitted(model, history, h=lf.H, limits=limits, registered=Registered("load", info.version),
                                 runtime=runtime, field_name="history")
        calls: list[tuple[str, Any]] = [
            ("registered forecast, service call (no recording)",
             lambda: services.forecast("load", "load", h=lf.H, history=history)),
            ("  store.get (reference -> version)", lambda: store.get("load", tenant="load")),
            ("  load_serving (cached model, stat check)", lambda: load_serving(store, info, n_series=1)),
            ("  forecast_fitted (validation, features, onnxruntime)",
             lambda: forecast_fitted(model, history, h=lf.H, limits=limits, registered=Registered("load", 1),
                                     runtime=runtime, field_name="history")),
            ("served-forecast record (the writer thread's work)",
             lambda: monitoring.record_served("load", info, result)),
            ("answer mapping + JSON encoding", lambda: msgspec.json.encode(forecast_out(result))),
            ("inline forecast, service call (seasonal_naive)",
             lambda: forecast(history, model="seasonal_naive", h=lf.H, limits=limits)),
        ]
        print(f"\none registered forecast in process: XGBoost {n_estimators} trees from its ONNX export, one series "
              f"of {lf.N_POINTS} points, h={lf.H}; {repeats} calls per span\n")
        print("| span | min ms | p50 ms | CPU p50 ms |")
        print("|---|--:|--:|--:|")
        for label, call in calls:
            for _ in range(5):
                call()
            wall, cpu = [], []
            for _ in range(repeats if "record" not in label else max(1, repeats // 4)):
                t, c = time.perf_counter(), time.thread_time()
                call()
                wall.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            print(f"| {label} | {min(wall) * 1e3:.3f} | {statistics.median(wall) * 1e3:.3f} | "
                  f"{statistics.median(cpu) * 1e3:.3f} |", flush=True)
        print(f"\n{_load()}")
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, start the server, train, export, measure; print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per route and client count")
    parser.add_argument("--soak", type=float, metavar="SECONDS", help="16 clients for SECONDS on each route")
    parser.add_argument("--crossover", action="store_true", help="native vs ONNX by request size, no server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 32, 128, 414])
    parser.add_argument("--threads", action="store_true", help="concurrent predictions with all threads vs one "
                                                               "per call, no server (8 clients, --duration s)")
    parser.add_argument("--spans", type=int, metavar="CALLS", help="no server: where one registered forecast's "
                                                                    "time goes, CALLS calls per span")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--inline-model", default="seasonal_naive", help="model of the inline route (name or JSON)")
    parser.add_argument("--no-onnx", action="store_true", help="serve the registered model natively")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--synthetic", action="store_true", help="synthetic series instead of M4 Hourly")
    args = parser.parse_args(argv)
    if args.crossover:
        crossover(args.sizes, args.n_estimators)
        return
    if args.spans:
        spans(args.spans, args.n_estimators)
        return
    if args.threads:
        thread_stalls(max(args.clients), args.duration, args.n_estimators)
        return
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "python")
    inline_model = json.loads(args.inline_model) if args.inline_model.strip().startswith("{") else args.inline_model
    frame, what = lf.training_data(8, synthetic=args.synthetic)
    state = Path(tempfile.mkdtemp(prefix="forecasting-throughput-"))
    log = state.with_name(state.name + ".log")  # kept after the run (the state folder is removed)
    os.environ["FORECASTING_WORKERS"] = str(args.workers)  # read by the server start_server spawns
    proc = None
    try:
        start = time.perf_counter()
        proc, base = lf.start_server(state, log=log)
        print(f"{args.workers} server process(es) ready in {time.perf_counter() - start:.1f} s; {os.cpu_count()} "
              f"cores; load generator: {tool}{' (in this process: it takes CPU from the server)' if tool == 'python' else ''}"
              f"; server log: {log}")
        ref = lf.train_model(base, frame, n_estimators=args.n_estimators)
        print(f"trained {ref} on {what} (n_estimators={args.n_estimators})")
        if not args.no_onnx:
            r = httpx.get(f"{base}/v1/models/{ref}/onnx", headers=lf.HEADERS, timeout=300)
            if r.status_code != 200:
                msg = f"ONNX export failed: {r.status_code} {r.text[:500]}"
                raise SystemExit(msg)
            print(f"exported {ref} to ONNX: registered forecasts of one series are answered by onnxruntime")
        registered, inline = _bodies(frame, inline_model)
        routes = {"inline": ("/v1/forecast", inline), "registered": (f"/v1/models/{ref}/forecast", registered)}
        if args.soak:
            before = tree_rss_mb(proc.pid)
            print(f"\nsoak: 16 clients, {args.soak:g} s per route; server tree resident memory at start "
                  f"{before} ({_load()})")
            measure(base, routes, [16], args.soak, tool, pid=proc.pid)
            print(f"\nserver tree resident memory: start {before}, end {tree_rss_mb(proc.pid)}")
        else:
            measure(base, routes, args.clients, args.duration, tool, pid=proc.pid)
            print(f"\nserver tree resident memory after the run: {tree_rss_mb(proc.pid)}")
    except BaseException:
        print(lf.log_tail(log), file=sys.stderr)
        raise
    finally:
        lf.stop_server(proc, state)


if __name__ == "__main__":
    main(sys.argv[1:])
