#!/usr/bin/env python3
"""Online-serving benchmark: the project's web service vs a zoomcamp-style Flask service, one ride per request.

    .venv/bin/python bench/bench_web.py                      # ~1–2 min on 2 cores
    .venv/bin/python bench/bench_web.py --requests 20000 --concurrency 16

Both services score the same generated month's rides with a model trained on the same generated month:
- **project**: `python -m deploy_assets.serving.web` (uvicorn, 1 process) serving `models:/bench@champion` from a
  local sqlite MLflow store made for the run (a `ZonePairDurationRegressor`, registered and promoted as the
  pipeline does: the built-in fast path);
- **project-generic**: the same service serving the baseline's very pipeline, logged as the zoomcamp logs it
  (`mlflow.sklearn.log_model`, no signature) and promoted through the platform: the generic path (model contract,
  `PU_DO` built column-wise, the DictVectorizer matrix built without dicts);
- **baseline**: the zoomcamp deployment module's `predict.py` — Flask, `prepare_features` → dict with `PU_DO` →
  `DictVectorizer.transform` + `LinearRegression.predict` per request, `jsonify` — served the zoomcamp way by
  gunicorn (1 sync worker).
Each server runs in its own process on 127.0.0.1, one after the other (never both under load at once). The load
comes from a third process (`load` sub-command): a bounded number of requests over raw HTTP/1.1 keep-alive
connections (asyncio; reconnecting when the server closes, as gunicorn's sync worker does after each answer).
Two phases per server, after a warm-up: **latency** (1 connection, requests back to back: p50/p90/p99 of one
ride) and **throughput** (`--concurrency` connections: req/s, and the latencies under that load). A sample of
answers is checked against each model's own predictions. The machine's 1-minute load average is recorded around
each phase: on a shared 2-core machine other work inflates any number.

Prints a table and one line `BENCH_JSON {...}`: per server and phase `requests`, `errors`, `seconds`,
`req_per_s`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`; `throughput_ratio` (project / baseline req/s at the same
concurrency), `latency_p99_ms` (project, 1 connection) and `targets_met` (p99 < 10 ms; ratio ≥ 3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BIN = Path(PYTHON).parent
MODEL_NAME = "bench-trip-duration"
GENERIC_MODEL_NAME = "bench-trip-duration-zoomcamp"


# --- the zoomcamp-style baseline service (served by gunicorn: `bench_web:baseline_app()`) ----------------------------


def prepare_features(ride: dict) -> dict:
    features = {}
    features["PU_DO"] = "%s_%s" % (ride["PULocationID"], ride["DOLocationID"])
    features["trip_distance"] = ride["trip_distance"]
    return features


def baseline_app():
    """The zoomcamp module's predict.py: a pickled DictVectorizer + LinearRegression pipeline behind Flask."""
    from flask import Flask, jsonify, request

    with open(os.environ["BENCH_BASELINE_MODEL"], "rb") as handle:
        pipeline = pickle.load(handle)

    def predict(features):
        preds = pipeline.predict(features)
        return float(preds[0])

    app = Flask("duration-prediction")

    @app.route("/predict", methods=["POST"])
    def predict_endpoint():
        ride = request.get_json()
        features = prepare_features(ride)
        pred = predict(features)
        return jsonify({"duration": pred, "ride_id": ride.get("ride_id")})

    @app.route("/health")
    def health():
        return jsonify({"status": "ok"})

    return app


# --- load generator (its own process) -----------------------------------------------------------------------------


def _request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _worker(host, port, requests, latencies, samples, errors, deadline, sample_every):
    reader = writer = None
    for index, payload in requests:
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            close = headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0")
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            errors.append(repr(error))
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        latencies.append(time.perf_counter() - start)
        if status != 200:
            errors.append(f"{status} {body[:200]!r}")
        elif index % sample_every == 0:
            samples.append((index, json.loads(body)))
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _drive(url: str, rides: list[dict], total: int, concurrency: int, timeout: float) -> dict:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port, path = parts.hostname, parts.port, parts.path
    bodies = [json.dumps(ride).encode() for ride in rides]
    requests = [(i, _request_bytes(host, port, path, bodies[i % len(bodies)])) for i in range(total)]
    shares = [requests[k::concurrency] for k in range(concurrency)]
    latencies: list[float] = []
    samples: list = []
    errors: list[str] = []
    deadline = time.perf_counter() + timeout
    start = time.perf_counter()
    await asyncio.gather(
        *(_worker(host, port, share, latencies, samples, errors, deadline, max(1, total // 50)) for share in shares)
    )
    seconds = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "concurrency": concurrency,
        "seconds": seconds,
        "req_per_s": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "samples": samples[:20],
    }


def cmd_load(args) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    rides = json.loads(Path(args.rides).read_text())
    load_before = os.getloadavg()[0]
    result = asyncio.run(_drive(args.url, rides, args.requests, args.concurrency, args.timeout))
    result["loadavg_1m_before"], result["loadavg_1m_after"] = load_before, os.getloadavg()[0]
    print(json.dumps(result))


# --- orchestration ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own session; stopped with SIGINT to its group, SIGKILL after a timeout."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, url: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.name} not ready after {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        self.log.close()


def _run_load(url: str, rides_path: Path, requests: int, concurrency: int, timeout: float) -> dict:
    completed = subprocess.run(
        [PYTHON, __file__, "load", "--url", url, "--rides", str(rides_path), "--requests", str(requests),
         "--concurrency", str(concurrency), "--timeout", str(timeout)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout + 60, check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"load generator failed:\n{completed.stdout[-2000:]}{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _prepare(workdir: Path, rows: int, score_rows: int) -> dict:
    """Train both models on the same generated month; register ours in a local MLflow store; rides to send."""
    import numpy as np
    import pandas as pd
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.generate import generate_month
    from deploy_assets.core.model import train_duration_model
    from deploy_assets.core.registry import RegistryClient

    train = clean_trips(generate_month(2024, 1, rows, seed=1), 2024, 1).table
    trained = train_duration_model([train])

    frame = train.select(["PULocationID", "DOLocationID", "trip_distance", "duration"]).to_pandas()
    frame[["PULocationID", "DOLocationID"]] = frame[["PULocationID", "DOLocationID"]].astype(str)
    frame["PU_DO"] = frame["PULocationID"] + "_" + frame["DOLocationID"]
    pipeline = make_pipeline(DictVectorizer(), LinearRegression())
    pipeline.fit(frame[["PU_DO", "trip_distance"]].to_dict(orient="records"), frame["duration"].values)
    baseline_path = workdir / "baseline.pkl"
    baseline_path.write_bytes(pickle.dumps(pipeline))

    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    registry = RegistryClient(
        tracking_uri=tracking_uri, artifact_location=str(workdir / "artifacts"), experiment_name=MODEL_NAME, model_name=MODEL_NAME
    )
    version = registry.log_and_register(trained, "2024-02-01", ["2024-01-01"], {"smoothing": 5.0}).version
    registry.promote(version)

    # The baseline's pipeline, logged the zoomcamp's way (no signature) and promoted through the platform's door.
    import mlflow
    import sklearn

    generic = RegistryClient(tracking_uri=tracking_uri, model_name=GENERIC_MODEL_NAME)
    with registry._fluent_api(), mlflow.start_run(experiment_id=registry._experiment_id(registry._client())):
        info = mlflow.sklearn.log_model(
            pipeline, name="model", registered_model_name=GENERIC_MODEL_NAME,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    generic.promote(str(info.registered_model_version))

    score = clean_trips(generate_month(2024, 2, score_rows, seed=2), 2024, 2).table
    rides = [
        {"PULocationID": pu, "DOLocationID": do, "trip_distance": dist, "ride_id": ride_id}
        for ride_id, pu, do, dist in zip(*(score[c].to_pylist() for c in ("ride_id", "PULocationID", "DOLocationID", "trip_distance")))
    ]
    rides_path = workdir / "rides.json"
    rides_path.write_text(json.dumps(rides))
    expected_ours = trained.model.predict_arrays(*(np.asarray([r[c] for r in rides]) for c in ("PULocationID", "DOLocationID", "trip_distance")))
    expected_baseline = pipeline.predict([{"PU_DO": f"{r['PULocationID']}_{r['DOLocationID']}", "trip_distance": r["trip_distance"]} for r in rides])
    del pd
    return {
        "tracking_uri": tracking_uri,
        "version": version,
        "baseline_path": baseline_path,
        "rides": rides,
        "rides_path": rides_path,
        "expected": {
            "project": expected_ours.tolist(),
            "project-generic": list(map(float, expected_baseline)),
            "baseline": list(map(float, expected_baseline)),
        },
    }


def _check_samples(name: str, result: dict, expected: list[float], n_rides: int) -> int:
    """Answers in the sample that differ from the model's own prediction (should be 0)."""
    key = "ride_duration" if name.startswith("project") else "duration"
    wrong = 0
    for index, body in result.pop("samples"):
        if abs(body[key] - expected[index % n_rides]) > 1e-9:
            wrong += 1
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load", help="(internal) the load generator")
    load.add_argument("--url", required=True)
    load.add_argument("--rides", required=True)
    load.add_argument("--requests", type=int, required=True)
    load.add_argument("--concurrency", type=int, default=1)
    load.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--train-rows", type=int, default=200_000, help="rows of the generated training month")
    parser.add_argument("--rides", type=int, default=2_000, help="distinct rides sent (cycled)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--latency-requests", type=int, default=3_000, help="requests on 1 connection")
    parser.add_argument("--requests", type=int, default=10_000, help="requests in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in the throughput phase")
    parser.add_argument("--timeout", type=float, default=120, help="wall-clock cap per phase (s)")
    parser.add_argument("--out-dir", default=None, help="keep models, rides and server logs here")
    args = parser.parse_args()
    if args.command == "load":
        cmd_load(args)
        return

    workdir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-web-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"[bench-web] preparing models and rides in {workdir} …", file=sys.stderr, flush=True)
    prepared = _prepare(workdir, args.train_rows, args.rides)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"})

    servers = {
        "project": lambda port: Server(
            "project",
            [PYTHON, "-m", "deploy_assets.serving.web", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            {**env, "MLFLOW_TRACKING_URI": prepared["tracking_uri"], "DEPLOY_ASSETS_MODEL_NAME": MODEL_NAME},
            workdir,
        ),
        "project-generic": lambda port: Server(
            "project-generic",
            [PYTHON, "-m", "deploy_assets.serving.web", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            {**env, "MLFLOW_TRACKING_URI": prepared["tracking_uri"], "DEPLOY_ASSETS_MODEL_NAME": GENERIC_MODEL_NAME},
            workdir,
        ),
        "baseline": lambda port: Server(
            "baseline",
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--chdir", str(ROOT / "bench"),
             "bench_web:baseline_app()"],
            {**env, "BENCH_BASELINE_MODEL": str(prepared["baseline_path"])},
            workdir,
        ),
    }
    ready_paths = {"project": "/ready", "project-generic": "/ready", "baseline": "/health"}
    results: dict = {}
    for name, make in servers.items():
        port = _free_port()
        server = make(port)
        try:
            server.wait_ready(f"http://127.0.0.1:{port}{ready_paths[name]}")
            url = f"http://127.0.0.1:{port}/predict"
            print(f"[bench-web] {name}: warm-up, latency, throughput …", file=sys.stderr, flush=True)
            _run_load(url, prepared["rides_path"], args.warmup, 1, args.timeout)
            phases = {
                "latency": _run_load(url, prepared["rides_path"], args.latency_requests, 1, args.timeout),
                "throughput": _run_load(url, prepared["rides_path"], args.requests, args.concurrency, args.timeout),
            }
            for phase in phases.values():
                phase["wrong_answers_in_sample"] = _check_samples(name, phase, prepared["expected"][name], len(prepared["rides"]))
            results[name] = phases
        finally:
            server.stop()

    ours, base = results["project"], results["baseline"]
    ratio = ours["throughput"]["req_per_s"] / base["throughput"]["req_per_s"] if base["throughput"]["req_per_s"] else float("inf")
    targets = {
        "p99_one_ride_lt_10_ms": ours["latency"]["p99_ms"] < 10.0,
        "throughput_ge_3x_baseline": ratio >= 3.0,
        "no_errors": all(p["errors"] == 0 and p["wrong_answers_in_sample"] == 0 for r in results.values() for p in r.values()),
    }
    print(f"\n{'server':10} {'phase':11} {'conc':>4} {'req':>6} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'err':>4} {'load1':>5}")
    for name, phases in results.items():
        for phase_name, p in phases.items():
            print(
                f"{name:10} {phase_name:11} {p['concurrency']:>4} {p['requests']:>6} {p['req_per_s']:>8.0f} {p['p50_ms']:>7.2f} "
                f"{p['p90_ms']:>7.2f} {p['p99_ms']:>7.2f} {p['max_ms']:>7.2f} {p['errors']:>4} {p['loadavg_1m_before']:>5.2f}"
            )
    generic = results["project-generic"]
    generic_ratio = generic["throughput"]["req_per_s"] / base["throughput"]["req_per_s"] if base["throughput"]["req_per_s"] else float("inf")
    print(f"\nthroughput ratio (project / baseline, {args.concurrency} connections): {ratio:.2f}×")
    print(f"throughput ratio (project-generic / baseline, same pipeline): {generic_ratio:.2f}×")
    print(
        f"one ride, 1 connection: built-in p50 {ours['latency']['p50_ms']:.2f} / p99 {ours['latency']['p99_ms']:.2f} ms;"
        f" generic p50 {generic['latency']['p50_ms']:.2f} / p99 {generic['latency']['p99_ms']:.2f} ms"
    )
    for target, met in targets.items():
        print(f"  {'✓' if met else '✗'} {target}")
    summary = {
        "throughput_ratio": ratio,
        "generic_throughput_ratio": generic_ratio,
        "latency_p99_ms": ours["latency"]["p99_ms"],
        "generic_latency_p50_ms": generic["latency"]["p50_ms"],
        "generic_latency_p99_ms": generic["latency"]["p99_ms"],
        "targets_met": targets,
        "all_targets_met": all(targets.values()),
        "results": results,
        "config": {**{k: v for k, v in vars(args).items() if k != "command"}, "model_version": prepared["version"],
                   "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
    }
    print("BENCH_JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
