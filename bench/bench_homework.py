#!/usr/bin/env python3
"""Batch benchmark of the fhv deployment against the zoomcamp 2022 deployment homework: one FHV month scored with the
homework's model through the platform and by the homework's `starter.py`, same file, same run.

    .venv/bin/python bench/bench_homework.py                    # February 2021, 3,000,000 rows; ~1.5 min on 2 cores
    .venv/bin/python bench/bench_homework.py --rows 300000 --train-rows 100000 --repeat 1

1. Generates FHV 2021-01 (`--train-rows`) and 2021-02 (`--rows`) in the TLC's 2021 layout (`core.generate`).
2. Fits the homework's model on January exactly as the homework does (`deploy_assets_tests.homework.train`) and
   pickles it; in its own process, since a child inherits its parent's peak RSS and fitting on dicts is large.
3. **platform** (its own process per run): the fhv deployment's steps for February, as `bench/_worker.py score`
   times the yellow ones: ingest (`LandingZone.ingest_month` with the deployment's rules, null zones kept as -1, into
   its cleaned schema) then `score_batches` over the stored month into one Parquet file. The model passes the
   platform's door (`validate_model` against the deployment's ride columns) before the timer.
4. **homework** (its own process per run): `homework.score` (read, dicts, predict) + starter.py's `to_parquet`.
Both write Parquet uncompressed, as starter.py does. Each path runs `--repeat` times, interleaved; medians are
compared. The two outputs are joined on ride_id (both `2021/02_<row index>`): their largest difference is printed.
Prints a table and `BENCH_JSON {...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
YEAR, TRAIN_MONTH, SCORE_MONTH = 2021, 1, 2
VERSION = "homework"
DEPLOYMENT = "fhv"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cmd_prepare(args) -> dict:
    """Not timed by the comparison: the two months, and the homework's model fitted on January."""
    from deploy_assets.core.datasets import DATASETS
    from deploy_assets.core.generate import generate_month, write_month
    from deploy_assets_tests import homework

    fhv, landing = DATASETS["fhv"], str(Path(args.data) / "landing")
    files = {
        month: write_month(generate_month(YEAR, month, rows, seed=month, dataset=fhv), landing, YEAR, month, dataset=fhv)
        for month, rows in ((TRAIN_MONTH, args.train_rows), (SCORE_MONTH, args.rows))
    }
    started = time.perf_counter()
    dv, lr = homework.train(files[TRAIN_MONTH])
    fit_seconds = time.perf_counter() - started
    with open(args.model, "wb") as sink:
        pickle.dump((dv, lr), sink, protocol=pickle.HIGHEST_PROTOCOL)
    return {"files": files, "fit_s": fit_seconds, "features": len(dv.feature_names_), "peak_rss_mib": peak_rss_mib()}


def cmd_platform(args) -> dict:
    """Timed: the fhv deployment's ingest of February (landed file → stored cleaned month) and its scoring step
    (stored month by batches → predictions Parquet). The deployment's settings come from defs/ with
    DEPLOY_ASSETS_DATA_URI=--data, so its landing zone is the folder the months were generated in."""
    from sklearn.pipeline import make_pipeline

    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.core.batches import ParquetBatchWriter, iter_parquet_batches
    from deploy_assets.core.contract import validate_model
    from deploy_assets.core.scoring import PREDICTION_SCHEMA, score_batches
    from deploy_assets.declared import deployment_settings

    setup = time.perf_counter()
    os.environ["DEPLOY_ASSETS_DATA_URI"] = args.data
    deployment = Deployment(deployment_settings(DEPLOYMENT))
    with open(args.model, "rb") as source:
        dv, lr = pickle.load(source)
    model = validate_model(make_pipeline(dv, lr), VERSION, deployment.dataset.model_columns, deployment.name)
    setup_s = time.perf_counter() - setup

    stored = Path(args.out).with_suffix(".raw_trips.parquet")
    started = time.perf_counter()
    with ParquetBatchWriter(str(stored), deployment.clean_schema) as writer:
        ingested = deployment.landing.ingest_month(YEAR, SCORE_MONTH, writer, deployment.rules)
    ingest_s = time.perf_counter() - started
    with ParquetBatchWriter(args.out, PREDICTION_SCHEMA, compression=None) as writer:
        for batch in score_batches(iter_parquet_batches(str(stored)), model, VERSION):
            writer.write(batch)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "ingest_s": ingest_s, "score_s": seconds - ingest_s, "setup_s": setup_s,
            "rows_in": ingested.rows_read, "rows": writer.rows_written, "dropped": ingested.dropped,
            "peak_rss_mib": peak_rss_mib()}


def cmd_homework(args) -> dict:
    """Timed: `homework.score` of February (read, filter, dicts, predict) + writing its Parquet as starter.py does."""
    from deploy_assets_tests import homework

    setup = time.perf_counter()
    with open(args.model, "rb") as source:
        dv, lr = pickle.load(source)
    setup_s = time.perf_counter() - setup

    started = time.perf_counter()
    result = homework.score(args.file, YEAR, SCORE_MONTH, dv, lr)
    result.to_parquet(args.out, engine="pyarrow", compression=None, index=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "setup_s": setup_s, "rows": len(result), "peak_rss_mib": peak_rss_mib()}


def compare(platform_out: str, homework_out: str) -> dict:
    """Both scorers' predictions on the rides they share (joined on ride_id), and each's own mean."""
    import pyarrow.parquet as pq

    columns = ["ride_id", "predicted_duration"]
    ours = pq.read_table(platform_out, columns=[*columns, "prediction_adjusted"]).to_pandas()
    theirs = pq.read_table(homework_out, columns=columns).to_pandas()
    joined = ours.merge(theirs, on="ride_id", suffixes=("_platform", "_homework"))
    diff = (joined["predicted_duration_platform"] - joined["predicted_duration_homework"]).abs()
    return {
        "rides_platform": len(ours),
        "rides_homework": len(theirs),
        "rides_compared": len(joined),
        "predictions_adjusted_platform": int(ours["prediction_adjusted"].sum()),
        "max_abs_prediction_diff": float(diff.max()),
        "mean_predicted_platform": float(ours["predicted_duration"].mean()),
        "mean_predicted_homework": float(theirs["predicted_duration"].mean()),
    }


def run_json(command: list[str], timeout: float = 1800) -> dict:
    """One measured process; its last stdout line is its JSON. The 1-minute load average before and after is added."""
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "loadavg_1m": [load_before, os.getloadavg()[0]]}


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "prepare", "platform", "homework"])
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows of February, the month scored")
    parser.add_argument("--train-rows", type=int, default=1_000_000, help="rows of January, the month trained on")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (interleaved); medians compared")
    parser.add_argument("--out-dir", default=None, help="keep the months and outputs here (default: a temp folder)")
    for internal in ("--data", "--model", "--file", "--out"):  # of the per-path subcommands
        parser.add_argument(internal)
    args = parser.parse_args()
    commands = {"prepare": cmd_prepare, "platform": cmd_platform, "homework": cmd_homework}
    if args.command in commands:
        real_stdout, sys.stdout = sys.stdout, sys.stderr  # library prints must not mix with the JSON line
        try:
            result = commands[args.command](args)
        finally:
            sys.stdout = real_stdout
        print(json.dumps(result))
        return

    workdir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-homework-"))
    workdir.mkdir(parents=True, exist_ok=True)
    me, model = [PYTHON, __file__], str(workdir / "homework_model.pkl")
    print(f"[bench-homework] generating FHV {YEAR}-01 ({args.train_rows:,} rows) and {YEAR}-02 ({args.rows:,}),"
          f" fitting the homework's model in {workdir} …", file=sys.stderr, flush=True)
    prepared = run_json([*me, "prepare", "--rows", str(args.rows), "--train-rows", str(args.train_rows),
                         "--data", str(workdir), "--model", model])
    february = prepared["files"][str(SCORE_MONTH)]
    paths = {
        "platform": [*me, "platform", "--data", str(workdir), "--model", model, "--out", str(workdir / "platform.parquet")],
        "homework": [*me, "homework", "--file", february, "--model", model, "--out", str(workdir / "homework.parquet")],
    }
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    names = list(paths)
    for repeat in range(args.repeat):
        for name in names[repeat % 2:] + names[: repeat % 2]:
            print(f"[bench-homework] {name}, run {repeat + 1}/{args.repeat} …", file=sys.stderr, flush=True)
            runs[name].append(run_json(paths[name]))

    platform, homework = median_run(runs["platform"]), median_run(runs["homework"])
    same = compare(str(workdir / "platform.parquet"), str(workdir / "homework.parquet"))
    summary = {
        "rows_in": args.rows,
        "train_rows": args.train_rows,
        "platform_s": platform["seconds"],
        "homework_s": homework["seconds"],
        "platform_vs_homework": platform["seconds"] / homework["seconds"],
        "platform_peak_rss_mib": platform["peak_rss_mib"],
        "homework_peak_rss_mib": homework["peak_rss_mib"],
        **same,
        "same_predictions": same["max_abs_prediction_diff"] < 1e-6,
        "prepare": prepared,
        "runs": runs,
        "loadavg": os.getloadavg(),
    }
    print(f"\n{'path':44} {'seconds':>8} {'runs':>20} {'rows':>10} {'RSS MiB':>8}")
    for name, label, median in (("platform", "platform, fhv deployment (ingest + score)", platform),
                                ("homework", "homework starter.py (score + to_parquet)", homework)):
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in runs[name])
        print(f"{label:44} {median['seconds']:>8.2f} {seconds:>20} {median['rows']:>10,} {median['peak_rss_mib']:>8.0f}")
    print(f"  platform split (median run): ingest {platform['ingest_s']:.2f} s, score {platform['score_s']:.2f} s")
    print(f"\nplatform / homework: {summary['platform_vs_homework']:.2f}× the time"
          f" ({homework['seconds'] / platform['seconds']:.1f}× faster), peak RSS {platform['peak_rss_mib']:.0f} vs"
          f" {homework['peak_rss_mib']:.0f} MiB")
    print(f"same predictions: {same['rides_compared']:,} common rides of {same['rides_platform']:,} (platform) /"
          f" {same['rides_homework']:,} (homework), largest difference {same['max_abs_prediction_diff']:.3g} min"
          f" ({'< 1e-6: ok' if summary['same_predictions'] else 'NOT the same'});"
          f" {same['predictions_adjusted_platform']:,} clipped by the output policy; the platform's ingest dropped"
          f" {platform['dropped']}")
    print(f"mean predicted duration: platform {same['mean_predicted_platform']:.4f} min,"
          f" homework {same['mean_predicted_homework']:.4f} min")
    load = [x for name in runs for r in runs[name] for x in r["loadavg_1m"]]
    print(f"1-minute load average around the measured processes: {min(load):.2f}–{max(load):.2f}")
    print("BENCH_JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
