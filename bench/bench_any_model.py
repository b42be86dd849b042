#!/usr/bin/env python3
"""Batch benchmark of the generic path: a month scored with the zoomcamp's own pipeline, through the platform vs
the zoomcamp baseline script, in the same run.

    .venv/bin/python bench/bench_any_model.py                 # 3,000,000-row months, ~2–3 min on 2 cores
    .venv/bin/python bench/bench_any_model.py --rows 300000

1. Generates January and February (TLC yellow schema) with `deploy-assets-generate`'s generator.
2. Fits the zoomcamp `DictVectorizer + LinearRegression` on January exactly as the baseline script does (its own
   `read_dataframe` / `prepare_dicts`), logs it the zoomcamp's way (`mlflow.sklearn.log_model`, no signature) into a
   local MLflow store made for the run, registers it and promotes it through the platform (`RegistryClient.promote`:
   the contract is read from the DictVectorizer).
3. **platform** (its own process): `registry.load(version)` (reported, not timed), then timed read_trips +
   clean_trips + score_trips + pq.write_table of February — the same work as `bench/_worker.py score`; and the same
   for the built-in `ZonePairDurationRegressor` (**builtin**) and a bare pyarrow read → write of the same columns
   (**io floor**).
4. **baseline** (its own process): `/work/shared/bench/zoomcamp_baseline.py --train JAN --score FEB` (it fits its own,
   identical pipeline); its `score_total_s` (read + predict + write) is compared.
The platform's predictions are joined on ride_id with the baseline's: the largest difference is printed.
Prints a table and `BENCH_JSON {...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
BASELINE = Path(os.environ.get("DEPLOY_ASSETS_BASELINE", ROOT.parent / "shared" / "bench" / "zoomcamp_baseline.py"))
PYTHON = sys.executable
MODEL_NAME = "bench-any-model"


def _baseline_module():
    sys.path.insert(0, str(BASELINE.parent))
    import zoomcamp_baseline

    return zoomcamp_baseline


def prepare(workdir: Path, rows: int) -> dict:
    import mlflow
    import sklearn
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from deploy_assets.core.generate import generate_month, write_month
    from deploy_assets.core.registry import RegistryClient

    landing = workdir / "landing"
    files = {month: write_month(generate_month(2024, month, rows, seed=month), str(landing), 2024, month) for month in (1, 2)}

    zoomcamp = _baseline_module()
    started = time.perf_counter()
    train = zoomcamp.read_dataframe(files[1])
    pipeline = make_pipeline(DictVectorizer(), LinearRegression())
    pipeline.fit(zoomcamp.prepare_dicts(train), train.duration.values)
    fit_seconds = time.perf_counter() - started
    del train

    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    registry = RegistryClient(
        tracking_uri=tracking_uri, artifact_location=str(workdir / "artifacts"), experiment_name=MODEL_NAME, model_name=MODEL_NAME
    )
    with registry._fluent_api(), mlflow.start_run(experiment_id=registry._experiment_id(registry._client())):
        info = mlflow.sklearn.log_model(
            pipeline, name="model", registered_model_name=MODEL_NAME, pip_requirements=[f"scikit-learn=={sklearn.__version__}"]
        )
    version = str(info.registered_model_version)
    registry.promote(version)
    return {"files": files, "tracking_uri": tracking_uri, "version": version, "baseline_fit_s": fit_seconds}


def cmd_platform(args) -> dict:
    """Timed: read_trips + clean_trips + score_trips + write of month M; the model is loaded before."""
    import pyarrow.parquet as pq

    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import train_duration_model
    from deploy_assets.core.registry import RegistryClient
    from deploy_assets.core.schema import read_trips
    from deploy_assets.core.scoring import score_trips

    if args.model == "builtin":
        january = clean_trips(read_trips(args.train, args.train), 2024, 1).table
        model, version = train_duration_model([january]).model, "builtin"
        del january
        load_seconds = 0.0
    else:
        started = time.perf_counter()
        registry = RegistryClient(tracking_uri=args.tracking_uri, model_name=MODEL_NAME)
        version = registry.champion_version()
        model = registry.load(version)
        load_seconds = time.perf_counter() - started
    split = {}
    started = time.perf_counter()
    raw = read_trips(args.file, args.file)
    split["read_s"] = time.perf_counter() - started
    clean = clean_trips(raw, 2024, 2)
    split["clean_s"] = time.perf_counter() - started - sum(split.values())
    scored = score_trips(clean.table, model, version)
    split["predict_s"] = time.perf_counter() - started - sum(split.values())
    pq.write_table(scored, args.out, compression=None)
    split["write_s"] = time.perf_counter() - started - sum(split.values())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, **split, "load_model_s": load_seconds, "rows": scored.num_rows, "version": version,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def cmd_io_floor(args) -> dict:
    """Timed: read the 5 columns scoring needs + write a table of the predictions' size (no cleaning, no model)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    raw = pq.read_table(args.file, columns=["tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID", "trip_distance"])
    distance = raw["trip_distance"].to_numpy()
    out = pa.table({"PULocationID": raw["PULocationID"], "DOLocationID": raw["DOLocationID"],
                    "tpep_pickup_datetime": raw["tpep_pickup_datetime"], "predicted": pa.array(distance * 2.0 + np.float64(3.0))})
    pq.write_table(out, args.out, compression=None)
    return {"seconds": time.perf_counter() - started, "rows": raw.num_rows}


def run_json(command: list[str], timeout: float = 1800) -> dict:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "prepare", "platform", "io-floor"])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--file"), parser.add_argument("--train"), parser.add_argument("--out")
    parser.add_argument("--model", default="registry"), parser.add_argument("--tracking-uri")
    args = parser.parse_args()
    if args.command == "platform":
        print(json.dumps(cmd_platform(args)))
        return
    if args.command == "prepare":
        print(json.dumps(prepare(Path(args.out_dir), args.rows)))
        return
    if args.command == "io-floor":
        print(json.dumps(cmd_io_floor(args)))
        return

    workdir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-any-model-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"[bench-any-model] generating {args.rows:,}-row months, fitting and registering the zoomcamp pipeline in {workdir} …",
          file=sys.stderr, flush=True)
    me = [PYTHON, __file__]
    # In its own process too: a child inherits its parent's peak RSS (ru_maxrss), and fitting on dicts is large.
    prepared = run_json([*me, "prepare", "--rows", str(args.rows), "--out-dir", str(workdir)])
    files = {int(month): path for month, path in prepared["files"].items()}
    print("[bench-any-model] platform (zoomcamp pipeline), builtin, io floor, baseline …", file=sys.stderr, flush=True)
    results = {
        "platform": run_json([*me, "platform", "--file", files[2], "--out", str(workdir / "platform.parquet"),
                              "--tracking-uri", prepared["tracking_uri"]]),
        "builtin": run_json([*me, "platform", "--model", "builtin", "--train", files[1], "--file", files[2],
                             "--out", str(workdir / "builtin.parquet")]),
        "io_floor": run_json([*me, "io-floor", "--file", files[2], "--out", str(workdir / "floor.parquet")]),
        "baseline": run_json([PYTHON, str(BASELINE), "--train", files[1], "--score", files[2],
                              "--out", str(workdir / "baseline.parquet"), "--year", "2024", "--month", "2"]),
    }

    import numpy as np
    import pyarrow.parquet as pq

    ours = pq.read_table(workdir / "platform.parquet", columns=["ride_id", "predicted_duration"]).to_pandas().set_index("ride_id")
    theirs = pq.read_table(workdir / "baseline.parquet", columns=["ride_id", "predicted_duration"]).to_pandas().set_index("ride_id")
    joined = ours.join(theirs, how="inner", lsuffix="_platform", rsuffix="_baseline")
    max_diff = float(np.max(np.abs(joined["predicted_duration_platform"] - joined["predicted_duration_baseline"])))

    baseline_s = results["baseline"]["score_total_s"]
    ratio = baseline_s / results["platform"]["seconds"]
    summary = {
        "rows": args.rows,
        "platform_s": results["platform"]["seconds"],
        "builtin_s": results["builtin"]["seconds"],
        "io_floor_s": results["io_floor"]["seconds"],
        "baseline_score_s": baseline_s,
        "speedup_vs_baseline": ratio,
        "builtin_vs_io_floor": results["builtin"]["seconds"] / results["io_floor"]["seconds"],
        "generic_vs_io_floor": results["platform"]["seconds"] / results["io_floor"]["seconds"],
        "rides_compared": len(joined),
        "max_abs_prediction_diff": max_diff,
        "results": results,
        "loadavg": os.getloadavg(),
    }
    print(f"\n{'path':36} {'seconds':>8} {'read':>6} {'clean':>6} {'predict':>8} {'write':>6} {'RSS MiB':>8}")
    for name, label in (("platform", "platform, zoomcamp pipeline (generic)"), ("builtin", "platform, built-in regressor")):
        r = results[name]
        print(f"{label:36} {r['seconds']:>8.2f} {r['read_s']:>6.2f} {r['clean_s']:>6.2f} {r['predict_s']:>8.2f} {r['write_s']:>6.2f} {r['peak_rss_mib']:>8.0f}")
    b = results["baseline"]
    print(f"{'zoomcamp baseline script':36} {baseline_s:>8.2f} {b['read_s']:>6.2f} {'':>6} {b['predict_s']:>8.2f} {b['write_s']:>6.2f} {b['peak_rss_mib']:>8.0f}")
    print(f"{'io floor (read 5 cols + write)':36} {results['io_floor']['seconds']:>8.2f}")
    print(f"\nzoomcamp pipeline: platform {ratio:.1f}× faster than the baseline script scoring the same pipeline"
          f" ({results['platform']['seconds']:.2f} s vs {baseline_s:.2f} s; model load {results['platform']['load_model_s']:.2f} s not timed)")
    print(f"built-in path vs io floor: {summary['builtin_vs_io_floor']:.2f}×; generic path vs io floor: {summary['generic_vs_io_floor']:.2f}×")
    print(f"same predictions: {len(joined):,} rides joined on ride_id, largest difference {max_diff:.3g} min")
    print("BENCH_JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
