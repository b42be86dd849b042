#!/usr/bin/env python3
"""Batch-scoring benchmark: the project's scorer vs the zoomcamp baseline, the I/O floor and Dagster.

    .venv/bin/python bench/run_bench.py                                   # 3,000,000 rows, ~4–6 min on 2 cores (estimate)
    .venv/bin/python bench/run_bench.py --rows 200000 --dagster-rows 50000   # smoke run, ~2–2.5 min
    .venv/bin/python bench/run_bench.py --dataset green                  # the same, green months, `green` deployment

Every measured path runs in its own subprocess (bench/_worker.py, or the shared baseline script), so its
peak RSS is its own. Prints a table, then one line `BENCH_JSON {...}` with every number and the targets.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy_assets.core.datasets import DATASETS, YELLOW  # noqa: E402
from deploy_assets.core.months import Month  # noqa: E402
from deploy_assets.settings import TLC_DATASETS  # noqa: E402

WORKER = ROOT / "bench" / "_worker.py"
DEFAULT_BASELINE = ROOT.parent / "shared" / "bench" / "zoomcamp_baseline.py"

TARGETS = {
    "score_speedup_vs_baseline_ge_10": "project score ≥ 10× faster than the baseline's score_total_s",
    "score_vs_io_floor_le_1_5": "project scoring step ≤ 1.5× its own I/O floor (read the stored month + write)",
    "peak_rss_score_le_1024_mib": "project scoring peak RSS ≤ 1024 MiB",
    "train_speedup_vs_baseline_ge_5": "project train ≥ 5× faster than the baseline's train_s",
    "rmse_project_le_baseline": "project RMSE on M ≤ baseline RMSE on M (each on the rides it keeps)",
    "rmse_project_le_baseline_same_rows": "… and on the same rides (the project's kept rides, joined on ride_id)",
    "dagster_overhead_le_0_2": "Dagster 12-partition backfill (with its asset checks) ≤ 1.2× the same work without Dagster",
}

DAGSTER_KEYS = (
    "overhead_ratio", "overhead_ratio_best_runs", "overhead_vs_core_compute", "overhead_ratio_excluding_event_store",
)

# Variables that would point the Dagster run somewhere other than its temp folder.
DAGSTER_ENV_OVERRIDES = (
    "DEPLOY_ASSETS_LANDING_URI",
    "DEPLOY_ASSETS_WAREHOUSE_URI",
    "DEPLOY_ASSETS_PREDICTIONS_URI",
    "DEPLOY_ASSETS_MLFLOW_ARTIFACTS",
    "AWS_ENDPOINT_URL",
)


def run_json(label: str, command: list[str], env: dict | None = None, timeout: float = 900) -> dict:
    """Run one measured process; return the JSON object on its last stdout line."""
    print(f"[bench] {label} …", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - start
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-8000:])
        raise SystemExit(f"[bench] {label} failed (exit {completed.returncode})")
    result = json.loads(lines[-1])
    result["process_wall_s"] = wall
    # Other work on the machine inflates timings: the 1-minute load average around each measured process.
    result["loadavg_1m_before"], result["loadavg_1m_after"] = load_before, os.getloadavg()[0]
    print(f"[bench] {label} done in {wall:.1f} s", file=sys.stderr, flush=True)
    return result


def worker(dataset: str, *args: str, profile: Path | None = None) -> list[str]:
    """A _worker.py command on months of `dataset` (the TLC service: file names and layout)."""
    return [sys.executable, str(WORKER), "--dataset", dataset, *(["--profile", str(profile)] if profile else []), *args]


def run_repeated(label: str, command: list[str], repeat: int) -> dict:
    """Run a measured process `repeat` times; keep the run with the median seconds, and every run's seconds."""
    results = [run_json(f"{label} [{i + 1}/{repeat}]", command) for i in range(repeat)]
    ordered = sorted(results, key=lambda r: r["seconds"])
    median = ordered[(len(ordered) - 1) // 2]
    median["seconds_runs"] = [r["seconds"] for r in results]
    median["peak_rss_mib_runs"] = [r["peak_rss_mib"] for r in results]
    return median


def dagster_env(folder: Path, dataset: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DAGSTER_ENV_OVERRIDES}
    home = folder / "dh"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env.update(
        DEPLOY_ASSETS_DATA_URI=str(folder),
        MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}",
        DEPLOY_ASSETS_PREDICTIONS_DB=f"duckdb:///{folder / 'p.duckdb'}",
        DAGSTER_HOME=str(home),
        DEPLOY_ASSETS_TRAINING_MONTHS="1",
        # The deployment measured: the one named after the dataset (defs/yellow, defs/green), on its months.
        DEPLOY_ASSETS_DEPLOYMENT_NAME=dataset,
        DEPLOY_ASSETS_DATASET=dataset,
    )
    return env


def run_dagster(args, out: Path) -> dict:
    """HOOK: one partition through Dagster in-process + a 12-partition backfill vs the same work without it.

    13 months of --dagster-rows rows (the 12 ending at the scored month, plus the month before them) are
    generated into <folder>/landing (not timed); the timing itself is `_worker.py dagster` (cmd_dagster).
    """
    folder = out / "dagster"
    env = dagster_env(folder, args.dataset)
    first = Month(args.year, args.month) - 12
    first_year, first_month = first.pair
    env["DEPLOY_ASSETS_FIRST_MONTH"] = first.key
    run_json(
        f"generate 13 {args.dataset} months × {args.dagster_rows:,} rows (not timed)",
        worker(args.dataset, "generate", "--out", str(folder / "landing"), "--year", str(first_year),
               "--month", str(first_month), "--months", "13", "--rows", str(args.dagster_rows)),
    )
    command = ("dagster", "--landing", str(folder / "landing"), "--work", str(folder),
               "--year", str(args.year), "--month", str(args.month), "--rows", str(args.dagster_rows),
               "--repeat", str(args.dagster_repeat), "--loop" if args.loop else "--no-loop")
    label = "dagster: core compute, 1 partition, 12 runs, same work without Dagster (the steps), ranged backfill"
    result = run_json(label, worker(args.dataset, *command), env=env)
    if args.profile_dir:  # a second, profiled run in fresh stores; its timings are not reported
        again = out / "dagster_profiled"
        env = {
            **dagster_env(again, args.dataset),
            "DEPLOY_ASSETS_FIRST_MONTH": env["DEPLOY_ASSETS_FIRST_MONTH"],
            "DEPLOY_ASSETS_LANDING_URI": str(folder / "landing"),  # the same generated months
        }
        command = (*command[:4], str(again), *command[5:-2], "1", "--no-loop")  # one run of each path is enough
        run_json("dagster (cProfile, not used)", worker(args.dataset, *command, profile=profile(args, "dagster")),
                 env=env)
    return result


def profile(args, name: str) -> Path | None:
    return Path(args.profile_dir).resolve() / f"{name}.prof" if args.profile_dir else None


def fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows in each of M-1 and M")
    parser.add_argument(
        "--dataset", choices=TLC_DATASETS, default="yellow",
        help="the months' TLC service (file names and layout) and the deployment measured, named after it (default"
             " yellow); the baseline reads yellow's columns only, so it gets the same rides in yellow's layout",
    )
    parser.add_argument("--dagster-rows", type=int, default=300_000, help="rows per month for the Dagster part")
    parser.add_argument("--year", type=int, default=2024, help="scored month M (the model trains on M-1)")
    parser.add_argument("--month", type=int, default=2)
    parser.add_argument("--out-dir", help="keep every file here (default: a temp folder, deleted afterwards)")
    parser.add_argument(
        "--compression", default="none",
        help="Parquet compression of the project's and the I/O floor's output (baseline: none; default none)",
    )
    parser.add_argument("--baseline", default=str(DEFAULT_BASELINE), help="path of zoomcamp_baseline.py")
    parser.add_argument("--skip-dagster", action="store_true", help="leave out the Dagster part")
    parser.add_argument(
        "--dagster-repeat", type=int, default=3,
        help="runs of the same work without Dagster (the steps) and the ranged backfill (± checks), interleaved;"
             " medians reported (default 3)",
    )
    parser.add_argument("--dagster-only", action="store_true",
                        help="only the Dagster part (no baseline, project train/score, I/O floor)")
    parser.add_argument("--no-loop", dest="loop", action="store_false",
                        help="leave out the 12 one-month Dagster runs in a row")
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="runs of each project train / score / I/O floor process; the median run is reported (default 3)",
    )
    parser.add_argument(
        "--profile-dir",
        help="also cProfile the project train, score and Dagster processes into DIR/*.prof (extra runs, not timed)",
    )
    args = parser.parse_args(argv)

    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    out = Path(args.out_dir).resolve() if args.out_dir else Path(tempfile.mkdtemp(prefix="deploy_assets_bench_"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        report = bench(args, out)
    finally:
        if not args.out_dir:
            shutil.rmtree(out, ignore_errors=True)
    report["bench_wall_s"] = time.perf_counter() - started
    print_table(report)
    print("BENCH_JSON " + json.dumps(report, sort_keys=True))


def bench(args, out: Path) -> dict:
    if args.dagster_only:
        return dagster_only_report(args, run_dagster(args, out))
    year, month = args.year, args.month
    train_year, train_month = Month(year, month).previous.pair
    data = out / "landing"
    dataset, trained_on, scored = DATASETS[args.dataset], Month(train_year, train_month), Month(year, month)
    train_file, score_file = data / dataset.file_name(trained_on), data / dataset.file_name(scored)
    # The zoomcamp baseline reads yellow's columns (tpep_*) only: for another dataset it scores the same rides
    # (every dataset's generated month holds the same rides, in the same order) from yellow files beside them.
    for name in dict.fromkeys((args.dataset, "yellow")):
        run_json(
            f"generate {name} {train_year}-{train_month:02d} and {year}-{month:02d} × {args.rows:,} rows (not timed)",
            worker(name, "generate", "--out", str(data), "--year", str(train_year), "--month", str(train_month),
                   "--months", "2", "--rows", str(args.rows)),
        )

    baseline = run_json(
        "baseline (zoomcamp_baseline.py)",
        [sys.executable, args.baseline, "--train", str(data / YELLOW.file_name(trained_on)),
         "--score", str(data / YELLOW.file_name(scored)),
         "--out", str(out / "baseline_predictions.parquet"), "--year", str(year), "--month", str(month)],
    )
    model_file = out / "model.pkl"
    train_args = ("train", "--file", str(train_file), "--year", str(train_year), "--month", str(train_month),
                  "--stored", str(out / "raw_train_month.parquet"), "--model-out", str(model_file))
    train = run_repeated("project train", worker(args.dataset, *train_args), args.repeat)
    predictions = out / "project_predictions.parquet"
    score_args = ("score", "--file", str(score_file), "--year", str(year), "--month", str(month),
                  "--stored", str(out / "raw_scored_month.parquet"), "--model", str(model_file), "--out", str(predictions), "--compression", args.compression)
    score = run_repeated("project score", worker(args.dataset, *score_args), args.repeat)
    floor = run_repeated(
        "I/O floor",
        worker(args.dataset, "io-floor", "--file", str(score_file), "--like", str(predictions),
               "--stored", str(out / "raw_scored_month.parquet"),
               "--out", str(out / "io_floor.parquet"), "--compression", args.compression),
        args.repeat,
    )
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
        run_json("project train (cProfile, not used)",
                 worker(args.dataset, *train_args, profile=profile(args, "project_train")))
        run_json("project score (cProfile, not used)",
                 worker(args.dataset, *score_args, profile=profile(args, "project_score")))
    compare = run_json(
        "RMSE on shared rows (not timed)",
        worker(args.dataset, "compare", "--project", str(predictions),
               "--baseline", str(out / "baseline_predictions.parquet")),
    )
    dagster = None if args.skip_dagster else run_dagster(args, out)

    rows_in = score["rows_in"]
    baseline["rows_in"] = rows_in
    baseline["rows_per_s"] = rows_in / baseline["score_total_s"]
    ratios = {
        "score_speedup_vs_baseline": baseline["score_total_s"] / score["seconds"],
        # The scoring step against its own I/O (the target), then landed file → predictions (ingest + scoring
        # steps) against the least I/O any scorer of the landed file does.
        "score_vs_io_floor": score["score_s"] / floor["score_floor_s"],
        "landed_to_predictions_vs_io_floor": score["seconds"] / floor["seconds"],
        # Best run of each (less sensitive to other load on the machine); the targets use the medians above.
        "landed_to_predictions_vs_io_floor_best_runs": min(score["seconds_runs"]) / min(floor["seconds_runs"]),
        "train_speedup_vs_baseline": baseline["train_s"] / train["seconds"],
        # The robust fit's training step against the same step with the plain fit (measured in the same process).
        "train_robust_vs_plain": train["seconds"] / (train["seconds"] - train["fit_s"] + train["fit_plain_s"]),
        "rmse_project": score["rmse"],
        "rmse_baseline": baseline["rmse"],
        # Like-for-like: both models on the rides the project keeps (ride_id join) ...
        "rmse_baseline_on_project_rows": compare["rmse_baseline_on_project_rows"],
        # ... and the project's model on every ride the baseline keeps (incl. the dirty ones the project drops).
        "rmse_project_on_baseline_rows": score["rmse_on_baseline_rows"],
        "peak_rss_score_mib": score["peak_rss_mib"],
        **dagster_ratios(dagster or dict.fromkeys(DAGSTER_KEYS)),
    }
    targets = {
        "score_speedup_vs_baseline_ge_10": ratios["score_speedup_vs_baseline"] >= 10,
        "score_vs_io_floor_le_1_5": ratios["score_vs_io_floor"] <= 1.5,
        "peak_rss_score_le_1024_mib": ratios["peak_rss_score_mib"] <= 1024,
        "train_speedup_vs_baseline_ge_5": ratios["train_speedup_vs_baseline"] >= 5,
        "rmse_project_le_baseline": ratios["rmse_project"] <= ratios["rmse_baseline"],
        "rmse_project_le_baseline_same_rows": ratios["rmse_project"] <= ratios["rmse_baseline_on_project_rows"],
        "dagster_overhead_le_0_2": (
            None if dagster is None or ratios["dagster_overhead_ratio"] is None
            else ratios["dagster_overhead_ratio"] <= 0.2
        ),
    }
    return {
        "dataset": args.dataset,
        "config": {
            "rows": args.rows,
            "dagster_rows": args.dagster_rows,
            "scored_month": f"{year:04d}-{month:02d}",
            "train_month": f"{train_year:04d}-{train_month:02d}",
            "compression_project_and_floor": args.compression,
            "compression_baseline": "none",
            "rows_per_s_basis": "rows read from the month file (rows_in) / seconds",
            "repeat_project_processes": args.repeat,
            "repeat_baseline": 1,
            "repeat_dagster_comparison": args.dagster_repeat,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        **ratios,
        "targets_met": targets,
        "all_targets_met": all(v for v in targets.values() if v is not None),
        "baseline": baseline,
        "project_train": train,
        "project_score": score,
        "io_floor": floor,
        "rmse_compare": compare,
        "dagster": dagster,
    }


def dagster_ratios(dagster: dict) -> dict:
    return {
        # Orchestration overhead: the Dagster ranged backfill (checks computed in its steps) / the same work,
        # check computations included, without Dagster − 1 (medians).
        "dagster_overhead_ratio": dagster["overhead_ratio"],
        # From the best run of each side (less sensitive to other load); the target uses the medians.
        "dagster_overhead_ratio_best_runs": dagster["overhead_ratio_best_runs"],
        # The backfill / core compute only (in-memory core, no MLflow, DuckDB, stored assets, checks) − 1.
        "overhead_vs_core_compute": dagster["overhead_vs_core_compute"],
        # The backfill minus the seconds its events took to store / the same work − 1: Dagster's execution alone.
        "dagster_overhead_ratio_excluding_event_store": dagster["overhead_ratio_excluding_event_store"],
    }


def dagster_only_report(args, dagster: dict) -> dict:
    ratios = dagster_ratios(dagster)
    met = None if ratios["dagster_overhead_ratio"] is None else ratios["dagster_overhead_ratio"] <= 0.2
    return {
        "dataset": args.dataset,
        "config": {
            "dagster_rows": args.dagster_rows,
            "scored_month": f"{args.year:04d}-{args.month:02d}",
            "repeat_dagster_comparison": args.dagster_repeat,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        **ratios,
        "targets_met": {"dagster_overhead_le_0_2": met},
        "all_targets_met": bool(met),
        "dagster": dagster,
    }


def print_table(r: dict) -> None:
    dg = r.get("dagster")
    rows = []
    if "baseline" in r:
        b, tr, sc, fl = r["baseline"], r["project_train"], r["project_score"], r["io_floor"]
        rows += [
            ("baseline train (read+fit M-1)", b["train_s"], None, None, None),
            ("baseline score (read+predict+write M)", b["score_total_s"], b["rows_per_s"], b["peak_rss_mib"],
             b["rmse"]),
            ("project train (ingest M-1 + fit)", tr["seconds"], tr["rows_in"] / tr["seconds"], tr["peak_rss_mib"],
             None),
            ("project score (ingest M + score step)", sc["seconds"], sc["rows_per_s"], sc["peak_rss_mib"],
             sc["rmse"]),
            ("  of which the scoring step", sc["score_s"], sc["rows_per_s"] * sc["seconds"] / sc["score_s"], None, None),
            ("  the scoring step's I/O floor", fl["score_floor_s"], None, None, None),
            ("I/O floor (read 5 cols + write preds)", fl["seconds"], fl["rows_per_s"], fl["peak_rss_mib"], None),
        ]
    if dg:
        n = dg["rows_per_month"]

        def rate(seconds):
            return None if seconds is None else 12 * n / seconds

        rows += [
            ("core compute only, 12 months (13 read)", dg["core_compute_12_s"], rate(dg["core_compute_12_s"]),
             None, None),
            ("same work without Dagster, 1 partition", dg["pure_same_work_single_partition_s"], None, None, None),
            ("dagster, 1 partition, cold (+ingest M-1)", dg["single_partition_with_setup_s"], None, None, None),
            ("same work without Dagster (the steps)", dg["pure_same_work_s"], rate(dg["pure_same_work_s"]),
             None, None),
        ]
        if dg.get("loop_backfill_12_s") is not None:
            rows.append(("dagster, 12 partitions, 1 run each", dg["loop_backfill_12_s"], rate(dg["loop_backfill_12_s"]),
                         None, None))
        rows.append(("dagster, 12 partitions, one ranged run", dg["ranged_backfill_12_s"],
                     rate(dg["ranged_backfill_12_s"]), dg["peak_rss_mib"], None))
        if dg.get("ranged_no_checks_12_s") is not None:
            rows.append(("dagster, one ranged run, no asset checks", dg["ranged_no_checks_12_s"],
                         rate(dg["ranged_no_checks_12_s"]), None, None))
    width = max(len(name) for name, *_ in rows)
    print(f"\n{r['dataset']} months, deployment {r['dataset']}"
          + (" (the baseline reads the same rides from yellow files)" if "baseline" in r and r["dataset"] != "yellow"
             else ""))
    print(f"{'path':<{width}}  {'seconds':>8}  {'rows/s':>12}  {'peak RSS MiB':>12}  {'RMSE':>7}")
    for name, seconds, rate_, rss, rmse in rows:
        print(f"{name:<{width}}  {fmt(seconds, '8.2f')}  {fmt(rate_, '12,.0f')}  {fmt(rss, '12.0f')}  {fmt(rmse, '7.3f')}")
    loads = []
    if "baseline" in r:
        print("\nproject score splits: " + ", ".join(f"{k} {sc[k]:.2f}" for k in ("ingest_s", "score_s"))
              + f"; the scoring step's I/O floor {fl['score_floor_s']:.2f}")
        print("baseline score splits: " + ", ".join(f"{k} {b[k]:.2f}" for k in ("read_s", "predict_s", "write_s")))
        print("project train splits: " + ", ".join(f"{k} {tr[k]:.2f}" for k in ("ingest_s", "fit_s", "fit_plain_s"))
              + f"; robust vs plain fit, whole step: {r['train_robust_vs_plain']:.2f}×")
        print(f"RMSE on the project's {sc['rows']:,} kept rides: project {r['rmse_project']:.4f},"
              f" baseline {r['rmse_baseline_on_project_rows']:.4f} ({r['rmse_compare']['rows_shared']:,} joined on ride_id)")
        print(f"RMSE on the baseline's {b['rows']:,} kept rides (1-60 min only, dirty rows included):"
              f" project {r['rmse_project_on_baseline_rows']:.4f}, baseline {r['rmse_baseline']:.4f}")
        print("project runs (s): train " + " ".join(f"{x:.2f}" for x in tr["seconds_runs"])
              + ", score " + " ".join(f"{x:.2f}" for x in sc["seconds_runs"])
              + ", I/O floor " + " ".join(f"{x:.2f}" for x in fl["seconds_runs"]) + " (median reported)")
        loads += [x[k] for x in (b, tr, sc, fl) for k in ("loadavg_1m_before", "loadavg_1m_after")]
    if dg:
        print()
        if dg.get("pure_same_work_per_asset_s"):
            print("same work without Dagster, per asset: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in dg["pure_same_work_per_asset_s"].items()))
        print("core compute only, 12 months: " + ", ".join(f"{k} {v:.2f}" for k, v in dg["core_compute_splits"].items()))
        for kind, label in (("loop", "loop"), ("ranged", "ranged"), ("ranged_no_checks", "ranged, no checks")):
            steps = dg.get(f"{kind}_step_seconds")
            if steps:
                print(f"dagster {label} step seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(steps.items()))
                      + f"; outside steps {dg[f'{kind}_outside_steps_s']:.2f}")
        print("runs (s, median reported): same work without Dagster "
              + " ".join(f"{x:.2f}" for x in dg["pure_same_work_runs_s"])
              + ", ranged " + " ".join(f"{x:.2f}" for x in dg["ranged_backfill_runs_s"])
              + (", ranged without checks " + " ".join(f"{x:.2f}" for x in dg["ranged_no_checks_runs_s"])
                 if dg["ranged_no_checks_runs_s"] else ""))
        if dg.get("ranged_events"):
            events = dg["ranged_events"]
            print(f"ranged run's event log: {sum(e['count'] for e in events.values())} events stored in"
                  f" {dg['ranged_event_store_s']:.2f} s — " + ", ".join(
                      f"{kind} {e['count']} × {1000 * e['store_s'] / e['count']:.1f} ms" for kind, e in events.items()))
        if dg.get("ranged_no_checks_error"):
            print(f"dagster without checks: not measurable ({dg['ranged_no_checks_error'][:220]}…)")
        for name, error in (dg.get("errors") or {}).items():
            if name != "ranged_nc":
                print(f"dagster path {name} FAILED: {error[:300]}")
        loads += [dg["loadavg_1m_before"], dg["loadavg_1m_after"], *dg.get("loadavg_1m_during", [])]
    if loads:
        print(f"1-min load average around measured processes: min {min(loads):.1f}, max {max(loads):.1f}"
              f" ({r['config']['cpus']} CPUs)")
    print()
    ratio_names = [
        ("score_speedup_vs_baseline", "{:.1f}×"), ("score_vs_io_floor", "{:.2f}×"),
        ("landed_to_predictions_vs_io_floor", "{:.2f}×"), ("landed_to_predictions_vs_io_floor_best_runs", "{:.2f}×"),
        ("train_speedup_vs_baseline", "{:.1f}×"),
        ("dagster_overhead_ratio", "{:+.0%}"), ("dagster_overhead_ratio_best_runs", "{:+.0%}"),
        ("overhead_vs_core_compute", "{:+.0%}"),
        ("dagster_overhead_ratio_excluding_event_store", "{:+.0%}"),
    ]
    for name, spec in ratio_names:
        if name in r:
            value = r[name]
            print(f"{name:<48} {'—' if value is None else spec.format(value)}")
    for name, met in r["targets_met"].items():
        print(f"target {'MET   ' if met else ('n/a   ' if met is None else 'MISSED')} {TARGETS[name]}")
    print(f"bench wall time {r['bench_wall_s']:.0f} s")


if __name__ == "__main__":
    main()
