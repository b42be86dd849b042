#!/usr/bin/env python3
"""One measured path per process, so each path's peak RSS is its own. Used by bench/run_bench.py.

    python bench/_worker.py generate  --out DIR --year Y --month M --months N --rows R [--seed S]
    python bench/_worker.py train     --file F --year Y --month M --model-out MODEL.pkl
    python bench/_worker.py score     --file F --year Y --month M --model MODEL.pkl --out PRED.parquet
    python bench/_worker.py compare   --project PRED.parquet --baseline PRED.parquet
    python bench/_worker.py io-floor  --file F --like PRED.parquet --out OUT.parquet
    python bench/_worker.py dagster   --landing DIR --year Y --month M --work DIR   (env: see run_bench.py)

Each subcommand prints exactly one JSON line on stdout (the last line); anything else goes to stderr.
Only the work named in each subcommand's docstring is inside the timer; imports, loading the pickled model
and the extra RMSE checks are not. `peak_rss_mib` is ru_maxrss taken right after the timed work.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Splits:
    """Named wall-clock splits (perf_counter), summed per name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return sum(self.seconds.values())


def compression_arg(value: str) -> str | None:
    return None if value.lower() in ("none", "uncompressed", "") else value


def emit(result: dict) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def month_offset(year: int, month: int, offset: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + offset
    return index // 12, index % 12 + 1


# --------------------------------------------------------------------------------------------------- generate
def cmd_generate(args) -> dict:
    """Not timed by the benchmark: writes N consecutive TLC months with the project's generator."""
    from deploy_assets.core.generate import generate_month, write_month

    uris = []
    for offset in range(args.months):
        year, month = month_offset(args.year, args.month, offset)
        uris.append(write_month(generate_month(year, month, args.rows, seed=args.seed), args.out, year, month))
    return {"files": uris, "rows": args.rows}


# ------------------------------------------------------------------------------------------------------ train
def cmd_train(args) -> dict:
    """Timed: read_trips (required columns) + clean_trips + train_duration_model on month M-1."""
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import train_duration_model
    from deploy_assets.core.schema import read_trips

    t = Splits()
    with t("read_s"):
        raw = read_trips(args.file, args.file)
    with t("clean_s"):
        clean = clean_trips(raw, args.year, args.month)
    with t("fit_s"):
        trained = train_duration_model([clean.table])
    seconds = t.total()
    rss = peak_rss_mib()
    with open(args.model_out, "wb") as sink:
        pickle.dump(trained.model, sink, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "path": "project_train",
        "seconds": seconds,
        **t.seconds,
        "rows_in": clean.rows_read,
        "rows_kept": clean.rows_kept,
        "train_rows": trained.train_rows,
        "holdout_rmse": trained.holdout_rmse,
        "peak_rss_mib": rss,
    }


# ------------------------------------------------------------------------------------------------------ score
def like_for_like_rmse(file: str, model) -> tuple[float, int]:
    """The project model's RMSE on exactly the rows the baseline keeps (1 <= duration <= 60, nothing else)."""
    from deploy_assets.core.features import MAX_ZONE_ID, durations_minutes
    from deploy_assets.core.model import rmse
    from deploy_assets.core.schema import read_trips

    raw = read_trips(file, file)
    duration = durations_minutes(raw)
    keep = (duration >= 1) & (duration <= 60)
    pickup = np.clip(raw["PULocationID"].to_numpy()[keep].astype(np.int64), 0, MAX_ZONE_ID)
    dropoff = np.clip(raw["DOLocationID"].to_numpy()[keep].astype(np.int64), 0, MAX_ZONE_ID)
    distance = raw["trip_distance"].to_numpy()[keep]
    return rmse(duration[keep], model.predict_arrays(pickup, dropoff, distance)), int(keep.sum())


def cmd_score(args) -> dict:
    """Timed: read_trips + clean_trips + score_trips + pq.write_table of month M (model already loaded)."""
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import rmse
    from deploy_assets.core.schema import read_trips
    from deploy_assets.core.scoring import score_trips

    with open(args.model, "rb") as source:
        model = pickle.load(source)
    compression = compression_arg(args.compression)

    t = Splits()
    with t("read_s"):
        raw = read_trips(args.file, args.file)
    with t("clean_s"):
        clean = clean_trips(raw, args.year, args.month)
    with t("predict_s"):
        scored = score_trips(clean.table, model, "bench")
    with t("write_s"):
        pq.write_table(scored, args.out, compression=compression)
    seconds = t.total()
    rss = peak_rss_mib()

    rows_in = clean.rows_read
    project_rmse = rmse(scored["actual_duration"].to_numpy(), scored["predicted_duration"].to_numpy())
    del raw, clean, scored
    same_rows_rmse, same_rows = like_for_like_rmse(args.file, model)
    return {
        "path": "project_score",
        "seconds": seconds,
        **t.seconds,
        "rows_in": rows_in,
        "rows": pq.ParquetFile(args.out).metadata.num_rows,
        "rows_per_s": rows_in / seconds,
        "rmse": project_rmse,
        "rmse_on_baseline_rows": same_rows_rmse,
        "baseline_rows": same_rows,
        "compression": args.compression,
        "output_bytes": Path(args.out).stat().st_size,
        "peak_rss_mib": rss,
    }


# ---------------------------------------------------------------------------------------------------- compare
def cmd_compare(args) -> dict:
    """Not timed: the baseline's RMSE on exactly the rides the project kept (joined on ride_id).

    Both scorers build ride_id as `YYYY/MM_<row index in the source file>`, so the ids identify the same rides.
    """
    import pyarrow.compute as pc

    from deploy_assets.core.model import rmse

    project_ids = pq.read_table(args.project, columns=["ride_id"])["ride_id"]
    baseline = pq.read_table(args.baseline, columns=["ride_id", "actual_duration", "predicted_duration"])
    shared = baseline.filter(pc.is_in(baseline["ride_id"], value_set=project_ids.combine_chunks()))
    return {
        "path": "compare",
        "rows_shared": shared.num_rows,
        "rows_project": len(project_ids),
        "rows_baseline": baseline.num_rows,
        "rmse_baseline_on_project_rows": rmse(
            shared["actual_duration"].to_numpy(), shared["predicted_duration"].to_numpy()
        ),
    }


# --------------------------------------------------------------------------------------------------- io floor
def cmd_io_floor(args) -> dict:
    """Timed: pq.read_table of the 5 required columns of M + pq.write_table of a predictions-shaped table.

    The output table is the project's own predictions file for M (read before the timer), so columns, types,
    row count and content (hence encoded size) are exactly those the project's scorer writes.
    """
    from deploy_assets.core.schema import REQUIRED_COLUMNS

    like = pq.read_table(args.like)
    compression = compression_arg(args.compression)
    rss_before = peak_rss_mib()
    t = Splits()
    with t("read_s"):
        raw = pq.read_table(args.file, columns=list(REQUIRED_COLUMNS))
    with t("write_s"):
        pq.write_table(like, args.out, compression=compression)
    seconds = t.total()
    rss = peak_rss_mib()
    return {
        "path": "io_floor",
        "seconds": seconds,
        **t.seconds,
        "rows_in": raw.num_rows,
        "rows": like.num_rows,
        "rows_per_s": raw.num_rows / seconds,
        "compression": args.compression,
        "peak_rss_mib": rss,
        "rss_before_timed_mib": rss_before,
    }


# ---------------------------------------------------------------------------------------------------- dagster
def pure_months(landing: str, months: list[tuple[int, int]], out_dir: Path) -> dict:
    """The same work as the Dagster backfill's core, without Dagster, MLflow or DuckDB.

    months[0] is only read and cleaned (it trains months[1]); every later month is read, cleaned, scored with
    a model trained on the month before, and written as Parquet (default compression, like PredictionStore).
    """
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import train_duration_model
    from deploy_assets.core.schema import read_trips, tlc_file_name
    from deploy_assets.core.scoring import score_trips

    out_dir.mkdir(parents=True, exist_ok=True)
    t = Splits()
    per_month = []
    previous = None
    for index, (year, month) in enumerate(months):
        start = time.perf_counter()
        file = f"{landing}/{tlc_file_name(year, month)}"
        with t("read_s"):
            raw = read_trips(file, file)
        with t("clean_s"):
            clean = clean_trips(raw, year, month).table
        if index > 0:
            with t("train_s"):
                model = train_duration_model([previous]).model
            with t("predict_s"):
                scored = score_trips(clean, model, str(index))
            with t("write_s"):
                pq.write_table(scored, out_dir / f"{year:04d}-{month:02d}.parquet")
        previous = clean
        per_month.append(time.perf_counter() - start)
    return {"total_s": t.total(), "splits": t.seconds, "per_month_s": per_month}


def range_run_supported(job) -> bool:
    """True when the job can materialize a partition range in ONE run.

    Either execute_in_process(partition_key_range=...) exists, or every asset in the job declares
    BackfillPolicy.single_run() (then a run tagged with a partition range materializes the whole range).
    """
    import inspect

    if "partition_key_range" in inspect.signature(job.execute_in_process).parameters:
        return True
    try:
        assets = job.asset_layer.asset_graph.assets_defs
    except AttributeError:
        return False
    policies = [a.backfill_policy for a in assets if a.keys and a.is_materializable]  # asset checks have no keys
    # BackfillPolicy.single_run() is the policy without a partitions-per-run limit.
    return bool(policies) and all(p is not None and p.max_partitions_per_run is None for p in policies)


def cmd_dagster(args) -> dict:
    """HOOK — one partition materialised through Dagster in-process, and a 12-partition backfill.

    Environment (set by run_bench.py before this process starts, read when deploy_assets.definitions loads):
    DEPLOY_ASSETS_DATA_URI, MLFLOW_TRACKING_URI, DEPLOY_ASSETS_PREDICTIONS_DB, DAGSTER_HOME.
    Months: the 12 months ending at --year/--month are scored; the month before them only feeds training.
    Timed separately, in this order, all against the same Dagster instance / MLflow store / DuckDB file:
      pure        — pure_months() over the same 13 files (no Dagster, MLflow, DuckDB);
      single      — raw_trips[first] then month_end_to_end[second]: the first Dagster work in this process,
                    so it pays the lazy `import mlflow` and the MLflow sqlite schema creation (cold);
      loop        — raw_trips[first] then one month_end_to_end run per month, 12 runs in order;
      ranged      — raw_trips[first] then ONE month_end_to_end run over the 12-month range, when the job
                    supports it (range_run_supported); this is the backfill the overhead ratio uses.
    """
    months = [month_offset(args.year, args.month, offset) for offset in range(-12, 1)]
    pure = pure_months(args.landing, months, Path(args.work) / "pure_predictions")

    t0 = time.perf_counter()
    import dagster as dg

    from deploy_assets.definitions import defs
    from deploy_assets.partitions import partition_key_for

    import_s = time.perf_counter() - t0
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("month_end_to_end")
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    keys = [partition_key_for(*m) for m in months]
    raw_only = [dg.AssetKey("raw_trips")]

    def run(key: str | None, selection=None, tags=None, steps: dict | None = None) -> float:
        start = time.perf_counter()
        result = job.execute_in_process(
            partition_key=key, instance=instance, asset_selection=selection, run_config=quiet, tags=tags,
            raise_on_error=False,
        )
        elapsed = time.perf_counter() - start
        if not result.success:
            failures = [str(e.message) for e in result.all_events if e.is_failure][:3]
            raise RuntimeError(f"dagster run for {key or tags} failed: {failures}")
        if steps is not None:
            for stats in instance.get_run_step_stats(result.run_id):
                if stats.start_time and stats.end_time:
                    steps[stats.step_key] = steps.get(stats.step_key, 0.0) + stats.end_time - stats.start_time
        return elapsed

    single_setup_s = run(keys[0], raw_only)
    single_s = run(keys[1])

    loop_steps: dict[str, float] = {}
    loop_start = time.perf_counter()
    loop_runs = [run(keys[0], raw_only, steps=loop_steps)]
    loop_runs += [run(key, steps=loop_steps) for key in keys[1:]]
    loop_s = time.perf_counter() - loop_start

    ranged = range_run_supported(job)
    ranged_s = ranged_error = None
    ranged_steps: dict[str, float] = {}
    if ranged:
        ranged_start = time.perf_counter()
        try:
            run(keys[0], raw_only, steps=ranged_steps)
            run(
                None,
                tags={"dagster/asset_partition_range_start": keys[1], "dagster/asset_partition_range_end": keys[-1]},
                steps=ranged_steps,
            )
            ranged_s = time.perf_counter() - ranged_start
        except RuntimeError as error:  # reported, and the ratio falls back to the per-partition loop
            ranged, ranged_error = False, str(error)[:2000]
    rss = peak_rss_mib()

    backfill_s, backfill_steps = (ranged_s, ranged_steps) if ranged else (loop_s, loop_steps)
    return {
        "path": "dagster",
        "rows_per_month": args.rows,
        "months": keys,
        "ranged_backfill": ranged,
        "ranged_backfill_error": ranged_error,
        "backfill_used_for_ratio": "ranged single run" if ranged else "one run per partition",
        "import_definitions_s": import_s,
        "single_setup_raw_trips_s": single_setup_s,
        "single_partition_s": single_s,
        "single_partition_with_setup_s": single_setup_s + single_s,
        "pure_single_partition_s": pure["per_month_s"][0] + pure["per_month_s"][1],
        "pure_12_s": pure["total_s"],
        "pure_splits": pure["splits"],
        "loop_backfill_12_s": loop_s,
        "loop_run_s": loop_runs,
        "loop_step_seconds": loop_steps,
        "loop_outside_steps_s": loop_s - sum(loop_steps.values()),
        "loop_overhead_ratio": loop_s / pure["total_s"] - 1,
        "ranged_backfill_12_s": ranged_s,
        "ranged_step_seconds": ranged_steps if ranged else None,
        "ranged_outside_steps_s": ranged_s - sum(ranged_steps.values()) if ranged else None,
        "ranged_overhead_ratio": ranged_s / pure["total_s"] - 1 if ranged else None,
        "backfill_12_s": backfill_s,
        "backfill_step_seconds": backfill_steps,
        "overhead_ratio": backfill_s / pure["total_s"] - 1,
        "peak_rss_mib": rss,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="write cProfile stats of the whole subcommand to this file")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate")
    p.add_argument("--out", required=True)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--month", type=int, required=True)
    p.add_argument("--months", type=int, default=1)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train")
    p.add_argument("--file", required=True)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--month", type=int, required=True)
    p.add_argument("--model-out", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score")
    p.add_argument("--file", required=True)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--month", type=int, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--compression", default="none")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("compare")
    p.add_argument("--project", required=True)
    p.add_argument("--baseline", required=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("io-floor")
    p.add_argument("--file", required=True)
    p.add_argument("--like", required=True, help="a predictions file whose shape the output copies")
    p.add_argument("--out", required=True)
    p.add_argument("--compression", default="none")
    p.set_defaults(func=cmd_io_floor)

    p = sub.add_parser("dagster")
    p.add_argument("--landing", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--year", type=int, required=True, help="last scored month")
    p.add_argument("--month", type=int, required=True)
    p.add_argument("--rows", type=int, required=True, help="rows per month (for the report only)")
    p.set_defaults(func=cmd_dagster)

    args = parser.parse_args(argv)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # library prints (Dagster, MLflow) must not mix with the JSON line
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        result = args.func(args)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        sys.stdout = real_stdout
    if args.profile:
        result["profile"] = args.profile
        result["profiled"] = "timings inflated by cProfile: do not compare with unprofiled runs"
    emit(result)


if __name__ == "__main__":
    main()
