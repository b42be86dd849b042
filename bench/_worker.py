#!/usr/bin/env python3
"""One measured path per process, so each path's peak RSS is its own. Used by bench/run_bench.py.

    python bench/_worker.py generate  --out DIR --year Y --month M --months N --rows R [--seed S]
    python bench/_worker.py train     --file F --year Y --month M --model-out MODEL.pkl
    python bench/_worker.py score     --file F --year Y --month M --model MODEL.pkl --out PRED.parquet
    python bench/_worker.py compare   --project PRED.parquet --baseline PRED.parquet
    python bench/_worker.py io-floor  --file F --like PRED.parquet --out OUT.parquet
    python bench/_worker.py dagster   --landing DIR --year Y --month M --work DIR [--repeat N]  (env: see run_bench.py)

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
def core_compute_months(landing: str, months: list[tuple[int, int]], out_dir: Path) -> dict:
    """Only the core compute of the backfill, without Dagster, MLflow or DuckDB (the old "pure" side).

    months[0] is only read and cleaned (it trains months[1]); every later month is read, cleaned, scored with
    a model trained on the month before, and written as Parquet (default compression, like PredictionStore).
    Kept for transparency (`overhead_vs_core_compute`): the backfill does much more than this.
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


def pure_same_work(resources: dict, months: list[tuple[int, int]]) -> dict:
    """The backfill's work without Dagster: the asset bodies' calls, made directly on the project's resources.

    `resources` is what `deploy_assets.resources.build_resources()` returns, i.e. the same landing zone, stored
    raw_trips location (`parquet_io_manager`'s URI), MLflow registry, predictions store and DuckDB file the
    Dagster runs use. For months[0] only raw_trips; for every later month, in month order:
      raw_trips        landing.read_month + clean_trips → write_parquet_atomic(<warehouse>/raw_trips/<key>.parquet)
      duration_model   read the stored training months back + train_duration_model + registry.log_and_register,
                       then the promotion gate: champion_version + load + evaluate on the hold-out → promote
      trip_predictions registry.version_for_partition + read the stored month + registry.load + score_trips
                       + predictions.write_month
      prediction_table warehouse.replace_month(predictions.read_month(...))
    Not done here: Dagster's own bookkeeping (events, metadata, instance storage) and the asset checks.
    """
    from deploy_assets.assets.model import TrainingConfig
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import evaluate, train_duration_model
    from deploy_assets.core.scoring import score_trips
    from deploy_assets.partitions import month_start, partition_key_for, training_partition_keys
    from deploy_assets.resources.storage import open_location, read_parquet, write_parquet_atomic

    landing, registry = resources["landing"], resources["registry"]
    predictions, warehouse = resources["predictions"], resources["warehouse"]
    stored = open_location(resources["parquet_io_manager"].uri, resources["parquet_io_manager"].s3_endpoint_url)
    config = TrainingConfig()  # the asset's defaults

    def raw_path(key: str):
        return stored / "raw_trips" / f"{key}.parquet"  # where PartitionedParquetIOManager stores raw_trips[key]

    t = Splits()
    per_month, versions = [], {}
    for index, (year, month) in enumerate(months):
        start = time.perf_counter()
        key = partition_key_for(year, month)
        with t("raw_read_clean_s"):
            cleaned = clean_trips(landing.read_month(year, month), year, month)
        with t("raw_write_s"):
            write_parquet_atomic(raw_path(key), cleaned.table)
        if index > 0:
            with t("model_read_stored_s"):
                training = training_partition_keys(key)
                earlier = [read_parquet(raw_path(p)) for p in training]
            with t("model_train_s"):
                trained = train_duration_model(
                    earlier, holdout_fraction=config.holdout_fraction, smoothing=config.smoothing
                )
            with t("model_log_register_s"):
                registered = registry.log_and_register(
                    trained, partition_key=key, training_partitions=training,
                    params={"smoothing": config.smoothing, "holdout_fraction": config.holdout_fraction},
                )
            with t("model_promotion_gate_s"):
                champion = registry.champion_version()
                champion_rmse = evaluate(registry.load(champion), trained.holdout) if champion else float("nan")
                if champion is None or not (trained.holdout_rmse > champion_rmse * (1 + config.promotion_margin)):
                    registry.promote(registered.version)
            with t("score_load_model_s"):
                version = registry.version_for_partition(key)
                model = registry.load(version)
            with t("score_s"):
                scored = score_trips(read_parquet(raw_path(key)), model, version)
            with t("score_write_s"):
                predictions.write_month(year, month, scored)
            with t("warehouse_replace_s"):
                warehouse.replace_month(month_start(key), predictions.read_month(year, month))
            versions[key] = version
        per_month.append(time.perf_counter() - start)
    return {"total_s": t.total(), "splits": t.seconds, "per_month_s": per_month, "model_versions": versions}


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
    """HOOK — Dagster's 12-month backfill vs the same work without Dagster.

    Environment (set by run_bench.py before this process starts, read when deploy_assets.definitions loads):
    DEPLOY_ASSETS_DATA_URI, MLFLOW_TRACKING_URI, DEPLOY_ASSETS_PREDICTIONS_DB, DAGSTER_HOME.
    Months: the 12 months ending at --year/--month are scored; the month before them only feeds training.
    Timed separately, in this order, all against the same Dagster instance / MLflow store / data folder /
    DuckDB file (so every measured path after `single` finds MLflow imported, its schema, experiment and
    registered model created, and the months' objects and rows already there to replace):
      core        — core_compute_months() over the same 13 files (no Dagster, MLflow, DuckDB): the old "pure";
      single      — raw_trips[first] then month_end_to_end[second]: the first Dagster work in this process,
                    so it pays the lazy `import mlflow` and the MLflow sqlite schema creation (cold);
      loop        — raw_trips[first] then one month_end_to_end run per month, 12 runs in order;
      pure        — pure_same_work(): the same work as the backfill's assets, calling the resources directly;
      ranged      — raw_trips[first] then ONE month_end_to_end run over the 12-month range, when the job
                    supports it (range_run_supported); the backfill the overhead ratio uses;
      ranged_nc   — the same ranged backfill with the asset checks left out of the job (asset selection
                    without checks), i.e. exactly the work `pure` does.
    pure, ranged and ranged_nc run --repeat times each, interleaved in a rotating order; medians are reported
    (and every run's seconds, and ratios from the best runs).
    """
    months = [month_offset(args.year, args.month, offset) for offset in range(-12, 1)]
    core = core_compute_months(args.landing, months, Path(args.work) / "core_predictions")

    t0 = time.perf_counter()
    import dagster as dg

    from deploy_assets.definitions import defs
    from deploy_assets.partitions import partition_key_for
    from deploy_assets.resources import build_resources

    import_s = time.perf_counter() - t0
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("month_end_to_end")
    asset_keys = set(job.asset_layer.asset_graph.materializable_asset_keys)
    # Asset selection without checks: the job's assets only (an empty check selection drops every check).
    # (a subset job re-adds the selected assets' checks when execute_in_process gets an asset_selection, so the
    # raw_trips-only run without checks is a subset job of its own)
    job_without_checks = job.get_subset(asset_selection=asset_keys, asset_check_selection=set())
    raw_only_without_checks = job.get_subset(asset_selection={dg.AssetKey("raw_trips")}, asset_check_selection=set())
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    keys = [partition_key_for(*m) for m in months]
    raw_only = [dg.AssetKey("raw_trips")]
    range_tags = {"dagster/asset_partition_range_start": keys[1], "dagster/asset_partition_range_end": keys[-1]}

    def run(key: str | None, selection=None, tags=None, steps: dict | None = None, on=job) -> float:
        start = time.perf_counter()
        result = on.execute_in_process(
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

    # The same resources the Dagster runs use (build_resources() reads the same environment as defs did).
    resources = build_resources()

    def measure_pure() -> tuple[float, dict]:
        pure = pure_same_work(resources, months)
        return pure["total_s"], pure

    def measure_ranged(with_checks: bool) -> tuple[float, dict]:
        steps: dict[str, float] = {}
        start = time.perf_counter()
        if with_checks:
            run(keys[0], raw_only, steps=steps)
            run(None, tags=range_tags, steps=steps)
        else:
            run(keys[0], steps=steps, on=raw_only_without_checks)
            run(None, tags=range_tags, steps=steps, on=job_without_checks)
        return time.perf_counter() - start, steps

    # pure / ranged / ranged without checks, `--repeat` times each, interleaved and in a rotating order so that
    # load from elsewhere and store growth hit all three alike; the median run of each is reported.
    ranged = range_run_supported(job)
    ranged_error = None
    measures = {"pure": measure_pure}
    if ranged:
        measures.update(ranged=lambda: measure_ranged(True), ranged_nc=lambda: measure_ranged(False))
    results: dict[str, list[tuple[float, dict]]] = {name: [] for name in measures}
    names = list(measures)
    for repeat in range(args.repeat):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            if name != "pure" and not ranged:
                continue
            try:
                results[name].append(measures[name]())
            except RuntimeError as error:  # reported, and the ratio falls back to the per-partition loop
                ranged, ranged_error = False, str(error)[:2000]
    rss = peak_rss_mib()

    def median(name: str) -> tuple[float | None, dict | None, list[float]]:
        runs = results.get(name) or []
        if not runs or (name != "pure" and not ranged):
            return None, None, [seconds for seconds, _ in runs]
        ordered = sorted(runs, key=lambda r: r[0])
        seconds, detail = ordered[(len(ordered) - 1) // 2]
        return seconds, detail, [seconds for seconds, _ in runs]

    pure_s, pure, pure_runs = median("pure")
    ranged_s, ranged_steps, ranged_runs = median("ranged")
    ranged_nc_s, ranged_nc_steps, ranged_nc_runs = median("ranged_nc")
    backfill_s, backfill_steps = (ranged_s, ranged_steps) if ranged else (loop_s, loop_steps)
    backfill_runs = ranged_runs if ranged else [loop_s]
    return {
        "path": "dagster",
        "rows_per_month": args.rows,
        "months": keys,
        "repeat": args.repeat,
        "ranged_backfill": ranged,
        "ranged_backfill_error": ranged_error,
        "backfill_used_for_ratio": "ranged single run" if ranged else "one run per partition",
        "import_definitions_s": import_s,
        # core compute only (the old "pure" side)
        "core_compute_12_s": core["total_s"],
        "core_compute_splits": core["splits"],
        "core_compute_single_partition_s": core["per_month_s"][0] + core["per_month_s"][1],
        # the same work as the backfill, without Dagster (median of --repeat runs)
        "pure_same_work_s": pure_s,
        "pure_same_work_runs_s": pure_runs,
        "pure_same_work_splits": pure["splits"],
        "pure_same_work_per_month_s": pure["per_month_s"],
        "pure_same_work_single_partition_s": pure["per_month_s"][0] + pure["per_month_s"][1],
        # Dagster
        "single_setup_raw_trips_s": single_setup_s,
        "single_partition_s": single_s,
        "single_partition_with_setup_s": single_setup_s + single_s,
        "loop_backfill_12_s": loop_s,
        "loop_run_s": loop_runs,
        "loop_step_seconds": loop_steps,
        "loop_outside_steps_s": loop_s - sum(loop_steps.values()),
        "loop_overhead_ratio": loop_s / pure_s - 1,
        "ranged_backfill_12_s": ranged_s,
        "ranged_backfill_runs_s": ranged_runs,
        "ranged_step_seconds": ranged_steps,
        "ranged_outside_steps_s": ranged_s - sum(ranged_steps.values()) if ranged else None,
        "ranged_overhead_ratio": ranged_s / pure_s - 1 if ranged else None,
        "ranged_no_checks_12_s": ranged_nc_s,
        "ranged_no_checks_runs_s": ranged_nc_runs,
        "ranged_no_checks_step_seconds": ranged_nc_steps,
        "ranged_no_checks_outside_steps_s": ranged_nc_s - sum(ranged_nc_steps.values()) if ranged else None,
        "asset_checks_cost_s": ranged_s - ranged_nc_s if ranged else None,
        "backfill_12_s": backfill_s,
        "backfill_step_seconds": backfill_steps,
        # orchestration overhead = Dagster backfill / the same work without Dagster − 1 (medians) ...
        "overhead_ratio": backfill_s / pure_s - 1,
        "overhead_ratio_without_checks": ranged_nc_s / pure_s - 1 if ranged else None,
        # ... and from the best run of each (less sensitive to other load on the machine)
        "overhead_ratio_best_runs": min(backfill_runs) / min(pure_runs) - 1,
        "overhead_ratio_without_checks_best_runs": min(ranged_nc_runs) / min(pure_runs) - 1 if ranged else None,
        # the old ratio: the backfill vs the core compute only (not the same work; kept for transparency)
        "overhead_vs_core_compute": backfill_s / core["total_s"] - 1,
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
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of the same-work / ranged / ranged-without-checks paths, interleaved; medians reported")
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
