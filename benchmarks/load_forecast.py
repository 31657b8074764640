"""Load test of ``POST /v1/models/{name}/forecast`` on a real server.

Starts ``forecasting serve`` (uvicorn) on a free loopback port with a temporary state
folder (or uses ``--url``), trains an XGBoost model through ``POST /v1/models`` on M4
Hourly series (synthetic hourly series with ``--synthetic`` or when the dataset folder is
absent), then sends the same request -- one series of 700 points as ``history``,
``h=48`` -- from 1, 8 and 32 concurrent clients and prints requests/s, p50/p99 latency
and errors for each.

The load generator is `wrk <https://github.com/wg/wrk>`_ (Debian: ``apt-get install
wrk``) when it is on the PATH; otherwise (or with ``--tool python``) a bounded httpx
async generator with the same measurements.

Run: ``FORECASTING_DATA_DIR=... python -m forecasting.benchmarks.load_forecast [--duration 10]
[--clients 1 8 32] [--n-estimators 100]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl

KEY = "load-test-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
N_POINTS, H = 700, 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path | None, lines: int = 40) -> str:
    """The last ``lines`` lines of a server's log file, introduced by its path ("" without a log)."""
    if log is None:
        return ""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"\n(server log {log} unreadable: {exc})"
    return f"\nlast {len(text)} lines of the server log {log}:\n" + "\n".join(text)


def start_server(state: Path, *, log: Path | None = None, ready_s: float = 180.0) -> tuple[subprocess.Popen[str], str]:
    """``forecasting serve`` on a free port; returns (process, base URL) once /readyz answers (within ``ready_s``
    seconds: each process's preload takes 5 to 60 s on a loaded 2-core machine).

    ``log``: a file that receives the server's output (its access and event lines; the tail is in the message
    when it does not start), else the output is dropped."""
    port = _free_port()
    env = {**os.environ, "FORECASTING_STATE_DIR": str(state), "FORECASTING_API_KEYS": f"load:{KEY}"}
    exe = Path(sys.executable).parent / "forecasting"
    out = log.open("a") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]  # the child keeps its own descriptor
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + ready_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            msg = f"the server exited with status {proc.returncode}{log_tail(log)}"
            raise SystemExit(msg)
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    msg = f"the server was not ready within {ready_s:g} s{log_tail(log)}"
    raise SystemExit(msg)


def stop_server(proc: subprocess.Popen[str] | None, state: Path) -> None:
    """Stop a server :func:`start_server` started (SIGTERM, then SIGKILL after 30 s) and remove its state folder."""
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(state, ignore_errors=True)


def training_data(n_series: int, *, synthetic: bool) -> tuple[pl.DataFrame, str]:
    """(long frame with integer ds, description): M4 Hourly's first series, or synthetic hourly ones."""
    if not synthetic:
        try:
            from forecasting.datasets import load_m4_hourly

            train, _ = load_m4_hourly(download=False)
            ids = train["unique_id"].unique(maintain_order=True).to_list()[:n_series]
            return train.filter(pl.col("unique_id").is_in(ids)), f"M4 Hourly, first {len(ids)} series"
        except Exception as exc:  # noqa: BLE001 - fall back to synthetic data, saying so
            print(f"M4 Hourly unavailable ({type(exc).__name__}: {exc}); using synthetic series", file=sys.stderr)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n_series):
        t = np.arange(1, N_POINTS + 1)
        y = 100 + 10 * i + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, t.size)
        frames.append(pl.DataFrame({"unique_id": f"S{i}", "ds": t, "y": y}))
    return pl.concat(frames), f"synthetic hourly, {n_series} series"


def train_model(base: str, frame: pl.DataFrame, *, n_estimators: int) -> str:
    """Train 'load' through the API and wait for the job; returns the model reference."""
    spec = {"name": "xgboost", "params": {"season_length": 24, "n_estimators": n_estimators}}
    data = {c: frame[c].to_list() for c in ("unique_id", "ds", "y")}
    with httpx.Client(base_url=base, headers=HEADERS, timeout=120) as c:
        r = c.post("/v1/models", json={"name": "load", "model": spec, "data": data, "h": H})
        r.raise_for_status()
        location = r.headers["location"]
        end = time.monotonic() + 600
        while (job := c.get(location).json())["state"] not in ("succeeded", "failed", "cancelled"):
            if time.monotonic() > end:
                msg = f"training still {job['state']} after 600 s"
                raise SystemExit(msg)
            time.sleep(0.5)
    if job["state"] != "succeeded":
        msg = f"training {job['state']}: {job.get('error')}"
        raise SystemExit(msg)
    return f"load@{job['version']}"


def request_body(frame: pl.DataFrame) -> bytes:
    """One series of the last 700 points as history, h=48."""
    uid = frame["unique_id"][0]
    one = frame.filter(pl.col("unique_id") == uid).tail(N_POINTS)
    return json.dumps({"h": H, "history": {c: one[c].to_list() for c in ("unique_id", "ds", "y")}}).encode()


# --------------------------------------------------------------------------- load generators
_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = [==[%(body)s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"non_2xx": %%d, "socket_errors": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(url: str, body: bytes, *, clients: int, duration: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_LUA % {"key": KEY, "body": body.decode()})
        script = fh.name
    try:
        threads = max(1, min(clients, os.cpu_count() or 1))
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration:g}s", "--timeout", "60s",
                              "-s", script, url], capture_output=True, text=True, timeout=duration + 120)
    finally:
        os.unlink(script)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        msg = f"wrk failed: {out.stdout}\n{out.stderr}"
        raise SystemExit(msg)
    r = json.loads(line[len("RESULT "):])
    seconds = r["duration_us"] / 1e6
    return {"requests": r["requests"], "rps": r["requests"] / seconds, "p50_ms": r["p50_us"] / 1e3,
            "p99_ms": r["p99_us"] / 1e3, "errors": r["non_2xx"] + r["socket_errors"]}


async def _python_load(url: str, body: bytes, *, clients: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {**HEADERS, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        end = start + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t = time.perf_counter()
                try:
                    r = await client.post(url, content=body, headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
            "errors": errors}


def run_python(url: str, body: bytes, *, clients: int, duration: float) -> dict[str, float]:
    return asyncio.run(_python_load(url, body, clients=clients, duration=duration))


# --------------------------------------------------------------------------- main
def _rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MiB; NaN where unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    """Start (or reach) the server, train, load it at each concurrency and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (its key in FORECASTING_LOAD_KEY); default: start "
                                      "one")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency level")
    parser.add_argument("--n-series", type=int, default=8, help="training series")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--synthetic", action="store_true", help="synthetic series instead of M4 Hourly")
    parser.add_argument("--inline", metavar="MODEL", help="load POST /v1/forecast with this model spec (e.g. "
                                                          "seasonal_naive) instead of a registered model")
    parser.add_argument("--onnx", action="store_true", help="export the model first (GET /v1/models/{ref}/onnx): "
                                                            "forecasts are then served by onnxruntime")
    args = parser.parse_args()
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "python")
    if tool == "wrk" and not shutil.which("wrk"):
        msg = "wrk is not on the PATH (Debian: apt-get install wrk); use --tool python"
        raise SystemExit(msg)

    frame, what = training_data(args.n_series, synthetic=args.synthetic)
    state = Path(tempfile.mkdtemp(prefix="forecasting-load-"))
    proc = None
    try:
        if args.url:
            base = args.url.rstrip("/")
            HEADERS["Authorization"] = f"Bearer {os.environ.get('FORECASTING_LOAD_KEY', KEY)}"
        else:
            t = time.perf_counter()
            proc, base = start_server(state)
            print(f"server ready (GET /readyz 200) {time.perf_counter() - t:.2f} s after start; resident memory "
                  f"{_rss_mb(proc.pid):.0f} MiB")
        if args.inline:
            ref = None
        else:
            t = time.perf_counter()
            ref = train_model(base, frame, n_estimators=args.n_estimators)
            print(f"trained {ref} on {what} in {time.perf_counter() - t:.1f} s (n_estimators={args.n_estimators})")
        if args.onnx:
            t = time.perf_counter()
            r = httpx.get(f"{base}/v1/models/{ref}/onnx", headers=HEADERS, timeout=300)
            if r.status_code != 200:
                msg = f"ONNX export failed: {r.status_code} {r.text[:500]}"
                raise SystemExit(msg)
            print(f"exported {ref} to ONNX in {time.perf_counter() - t:.1f} s ({len(r.content)} bytes zipped): "
                  f"forecasts are served by onnxruntime")
        body = request_body(frame)
        url = f"{base}/v1/models/{ref}/forecast"
        if args.inline:
            spec = json.loads(args.inline) if args.inline.strip().startswith("{") else args.inline
            inline = json.loads(body)
            body = json.dumps({"h": H, "data": inline["history"], "model": spec}).encode()
            url = f"{base}/v1/forecast"
        warm = httpx.post(url, content=body, headers={**HEADERS, "Content-Type": "application/json"}, timeout=60)
        if warm.status_code != 200:
            msg = f"warm-up request failed: {warm.status_code} {warm.text[:500]}"
            raise SystemExit(msg)
        run = run_wrk if tool == "wrk" else run_python
        print(f"\nPOST {url[len(base):]}, one series of {N_POINTS} points, h={H}, {args.duration:g} s per "
              f"level, load generator: {tool}\n")
        print("| clients | requests | requests/s | p50 ms | p99 ms | errors |")
        print("|--------:|---------:|-----------:|-------:|-------:|-------:|")
        for c in args.clients:
            stats = run(url, body, clients=c, duration=args.duration)
            print(f"| {c} | {stats['requests']:.0f} | {stats['rps']:.1f} | {stats['p50_ms']:.1f} | "
                  f"{stats['p99_ms']:.1f} | {stats['errors']:.0f} |", flush=True)
        if proc is not None:
            print(f"\nserver resident memory after the run: {_rss_mb(proc.pid):.0f} MiB")
    finally:
        stop_server(proc, state)


if __name__ == "__main__":
    main()
