#!/usr/bin/env python3
"""One measured path per process, so each path's peak RSS is its own. Used by bench/run_bench.py.

    python bench/_worker.py [--dataset yellow|green] SUBCOMMAND ...   (the TLC service of the months; default yellow)
    python bench/_worker.py generate  --out DIR --year Y --month M --months N --rows R [--seed S]
    python bench/_worker.py train     --file F --year Y --month M --stored RAW.parquet --model-out MODEL.pkl
    python bench/_worker.py score     --file F --year Y --month M --stored RAW.parquet --model MODEL.pkl --out PRED.parquet
    python bench/_worker.py compare   --project PRED.parquet --baseline PRED.parquet
    python bench/_worker.py io-floor  --file F --like PRED.parquet --out OUT.parquet
    python bench/_worker.py dagster   --landing DIR --year Y --month M --work DIR --rows R [--repeat N] [--no-loop]
                                      (env: see run_bench.py)

Each subcommand prints exactly one JSON line on stdout (the last line); anything else goes to stderr.
Only the work named in each subcommand's docstring is inside the timer; imports, loading the pickled model
and the extra RMSE checks are not. `peak_rss_mib` is ru_maxrss taken right after the timed work.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from deploy_assets.core.datasets import DATASETS  # noqa: E402
from deploy_assets.core.months import Month  # noqa: E402
from deploy_assets.settings import TLC_DATASETS  # noqa: E402

if TYPE_CHECKING:
    from deploy_assets.assets.monthly import Deployment


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


# --------------------------------------------------------------------------------------------------- generate
def cmd_generate(args) -> dict:
    """Not timed by the benchmark: writes N consecutive TLC months of --dataset with the project's generator."""
    from deploy_assets.core.generate import generate_month, write_month

    uris = []
    dataset = DATASETS[args.dataset]
    first = Month(args.year, args.month)
    for year, month in (m.pair for m in first.span(args.months)):
        table = generate_month(year, month, args.rows, seed=args.seed, dataset=dataset)
        uris.append(write_month(table, args.out, year, month, dataset=dataset))
    return {"files": uris, "rows": args.rows, "dataset": args.dataset}


# ------------------------------------------------------------------------------------------------------ train
def ingest_timed(t: Splits, file: str, year: int, month: int, stored: str, dataset: str):
    """The ingest step's work, timed as `ingest_s`: the landed file (a month of `dataset`) read, cleaned and written
    by record batches to the stored month (`raw_trips`), its zone-pair statistics gathered on the way."""
    from deploy_assets.core.batches import ParquetBatchWriter
    from deploy_assets.core.features import clean_schema
    from deploy_assets.core.ingest import ingest_file

    with t("ingest_s"), ParquetBatchWriter(stored, clean_schema(DATASETS[dataset].features)) as writer:
        return ingest_file(file, file, year, month, writer, dataset=DATASETS[dataset])


def cmd_train(args) -> dict:
    """Timed: month M-1 as the assets train on it: the ingest step (statistics gathered while it is stored), then
    the robust closed-form fit (`ZonePairDurationRegressor.from_statistics`: those statistics, and one more pass
    over the stored month to bound its distances). Beside it, not in `seconds`, the plain fit from the statistics
    alone (`fit_plain_s`), measured in the same process."""
    from deploy_assets.core.batches import iter_parquet_batches
    from deploy_assets.core.model import EVALUATION_COLUMNS, ZonePairDurationRegressor

    t = Splits()
    ingested = ingest_timed(t, args.file, args.year, args.month, args.stored, args.dataset)
    with t("fit_s"):
        model = ZonePairDurationRegressor.from_statistics(
            ingested.statistics, lambda: iter_parquet_batches(args.stored, EVALUATION_COLUMNS)
        )
    seconds = t.total()
    plain_start = time.perf_counter()
    ZonePairDurationRegressor.from_statistics(ingested.statistics, robust=False)
    t.seconds["fit_plain_s"] = time.perf_counter() - plain_start
    rss = peak_rss_mib()
    with open(args.model_out, "wb") as sink:
        pickle.dump(model, sink, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "path": "project_train",
        "seconds": seconds,
        **t.seconds,
        "rows_in": ingested.rows_read,
        "rows_kept": ingested.rows_kept,
        "train_rows": ingested.statistics.rides,
        "rides_bounded": model.rides_bounded_,
        "peak_rss_mib": rss,
    }


# ------------------------------------------------------------------------------------------------------ score
def like_for_like_rmse(file: str, model, dataset: str) -> tuple[float, int]:
    """The project model's RMSE on exactly the rows the baseline keeps (1 <= duration <= 60, nothing else)."""
    from deploy_assets.core.features import MAX_ZONE_ID, durations_minutes
    from deploy_assets.core.model import rmse
    from deploy_assets.core.schema import read_trips

    raw = read_trips(file, file, DATASETS[dataset])
    duration = durations_minutes(raw)
    keep = (duration >= 1) & (duration <= 60)
    pickup = np.clip(raw["PULocationID"].to_numpy()[keep].astype(np.int64), 0, MAX_ZONE_ID)
    dropoff = np.clip(raw["DOLocationID"].to_numpy()[keep].astype(np.int64), 0, MAX_ZONE_ID)
    distance = raw["trip_distance"].to_numpy()[keep]
    return rmse(duration[keep], model.predict_arrays(pickup, dropoff, distance)), int(keep.sum())


def cmd_score(args) -> dict:
    """Timed: month M from the landed file to its predictions as the assets do it: the ingest step (`ingest_s`),
    then the scoring step (`score_s`): `score_batches` over the stored month's record batches into one Parquet
    file (model already loaded)."""
    from deploy_assets.core.batches import ParquetBatchWriter, iter_parquet_batches
    from deploy_assets.core.model import rmse
    from deploy_assets.core.scoring import PREDICTION_SCHEMA, score_batches

    with open(args.model, "rb") as source:
        model = pickle.load(source)
    compression = compression_arg(args.compression)

    t = Splits()
    ingested = ingest_timed(t, args.file, args.year, args.month, args.stored, args.dataset)
    with t("score_s"), ParquetBatchWriter(args.out, PREDICTION_SCHEMA, compression=compression) as writer:
        for batch in score_batches(iter_parquet_batches(args.stored), model, "bench"):
            writer.write(batch)
    seconds = t.total()
    rss = peak_rss_mib()

    scored = pq.read_table(args.out, columns=["actual_duration", "predicted_duration"])
    project_rmse = rmse(scored["actual_duration"].to_numpy(), scored["predicted_duration"].to_numpy())
    del scored
    same_rows_rmse, same_rows = like_for_like_rmse(args.file, model, args.dataset)
    return {
        "path": "project_score",
        "seconds": seconds,
        **t.seconds,
        "rows_in": ingested.rows_read,
        "rows": pq.ParquetFile(args.out).metadata.num_rows,
        "rows_per_s": ingested.rows_read / seconds,
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
    """Timed: pq.read_table of the 5 required columns of M (as --dataset's file names them) + pq.write_table of a
    predictions-shaped table.

    The output table is the project's own predictions file for M (read before the timer), so columns, types,
    row count and content (hence encoded size) are exactly those the project's scorer writes.
    Then, apart (`score_floor_s`, not in `seconds`), the scoring step's own I/O floor: `pq.read_table` of the
    stored (cleaned) month it reads + `pq.write_table` of the same predictions.
    """
    required = list(DATASETS[args.dataset].locate(pq.read_schema(args.file), args.file).values())
    like = pq.read_table(args.like)
    compression = compression_arg(args.compression)
    rss_before = peak_rss_mib()
    t = Splits()
    with t("read_s"):
        raw = pq.read_table(args.file, columns=required)
    with t("write_s"):
        pq.write_table(like, args.out, compression=compression)
    seconds = t.total()
    rss = peak_rss_mib()
    rows_in = raw.num_rows
    del raw
    score_floor = Splits()
    with score_floor("score_floor_s"):
        pq.read_table(args.stored)
        pq.write_table(like, args.out, compression=compression)
    return {
        "path": "io_floor",
        "seconds": seconds,
        **t.seconds,
        **score_floor.seconds,
        "rows_in": rows_in,
        "rows": like.num_rows,
        "rows_per_s": rows_in / seconds,
        "compression": args.compression,
        "peak_rss_mib": rss,
        "rss_before_timed_mib": rss_before,
    }


# ---------------------------------------------------------------------------------------------------- dagster
def core_compute_months(landing: str, months: list[Month], out_dir: Path, dataset: str) -> dict:
    """Only the core compute of the backfill, without Dagster, MLflow or DuckDB (the old "pure" side).

    months[0] is only read and cleaned (it trains months[1]); every later month is read, cleaned, scored with
    a model trained on the month before, and written as Parquet (default compression, like PredictionStore).
    Kept for transparency (`overhead_vs_core_compute`): the backfill does much more than this.
    """
    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.model import train_duration_model
    from deploy_assets.core.schema import read_trips
    from deploy_assets.core.scoring import score_trips

    out_dir.mkdir(parents=True, exist_ok=True)
    t = Splits()
    per_month = []
    previous = None
    for index, within in enumerate(months):
        year, month = within.pair
        start = time.perf_counter()
        file = f"{landing}/{DATASETS[dataset].file_name(within)}"
        with t("read_s"):
            raw = read_trips(file, file, DATASETS[dataset])
        with t("clean_s"):
            clean = clean_trips(raw, year, month).table
        if index > 0:
            with t("train_s"):
                model = train_duration_model([previous]).model
            with t("predict_s"):
                scored = score_trips(clean, model, str(index))
            with t("write_s"):
                pq.write_table(scored, out_dir / f"{within.label}.parquet")
        previous = clean
        per_month.append(time.perf_counter() - start)
    return {"total_s": t.total(), "splits": t.seconds, "per_month_s": per_month}


def pure_same_work(resources: dict, deployment: Deployment, months: list[Month], smoothing: float) -> dict:
    """The ranged backfill's work without Dagster: the month steps the assets wrap (`deploy_assets.steps`), on the
    project's resources.

    `resources` is what `deploy_assets.resources.build_resources(settings)` returns (the shared stored-asset
    location, i.e. `parquet_io_manager`'s URI, the MLflow registry and the SQL database) and `deployment` is
    `assets.monthly.Deployment(settings)` (its landing zone, its registered model in that registry, its predictions
    store and its table in that database): the same objects the Dagster runs use. Step by step over every month,
    in the order the ranged run's steps run (each step loops over the months of its range): `store_month`,
    `train_month` (months[1:]), `promote_if_better`, `score_to_staging` then `publish_month`, `load_into_table`.
    Dagster's own bookkeeping (events, metadata, check evaluations, instance reads such as the previous month's kept
    rows or the month's registered version) is never done here.
    `smoothing` is the model parameter: a new value per measured path gives new training-data versions, so every
    path trains AND registers 12 models, as a first backfill does (a repeated one would find them registered).
    """
    from deploy_assets.core.objects import batch_source, read_parquet
    from deploy_assets.core.promotion import PromotionMargins
    from deploy_assets.steps.ingest import store_month
    from deploy_assets.steps.promote import promote_if_better
    from deploy_assets.steps.publish import load_into_table, publish_month
    from deploy_assets.steps.score import resolve_model_version, score_to_staging
    from deploy_assets.steps.train import train_month

    registry, thresholds = deployment.model(resources["registry"]), deployment.limits(resources["thresholds"])
    table, stored = deployment.table(resources["warehouse"]), resources["parquet_io_manager"]
    raw_trips, trip_statistics = deployment.label("raw_trips"), deployment.label("trip_statistics")
    spec = {"estimator": "builtin", "params": {"smoothing": smoothing}}
    keys = [m.key for m in months]
    columns = deployment.clean_schema.names

    def path(asset: str, key: str):
        return stored.partition_path(asset, key)

    t = Splits()
    start = time.perf_counter()
    previous_rows = None
    for key in keys:
        with t("ingest_s"):
            ingested = store_month(
                deployment.landing, deployment.rules, deployment.clean_schema, path(raw_trips, key),
                path(trip_statistics, key), key, previous_rows, thresholds,
            )
        previous_rows = ingested.stored.metadata["raw_trips"]["dagster/row_count"]
    ingest_done = time.perf_counter()

    trained = {}
    for key in keys[1:]:
        with t("model_s"):
            window = deployment.months.training_keys(key)
            trained[key] = train_month(
                spec, key, window, [read_parquet(path(trip_statistics, p)) for p in window],
                [batch_source(path(raw_trips, p)) for p in window], batch_source(path(raw_trips, key)), columns,
                registry,
            )
    model_done = time.perf_counter()

    for key in keys[1:]:
        with t("promotion_s"):
            promote_if_better(
                registry, key, trained[key].version, trained[key].metadata["mean_baseline_rmse"],
                batch_source(path(raw_trips, key)), columns, PromotionMargins(), by="bench",
            )
    promotion_done = time.perf_counter()

    versions = {}
    for key in keys[1:]:
        with t("predictions_score_s"):
            versions[key] = resolve_model_version(registry, deployment.settings.scoring_policy, key)
            staged = score_to_staging(
                batch_source(path(raw_trips, key)), registry, deployment.predictions, deployment.shadow_predictions,
                thresholds, columns, key, versions[key],
            )
            if "skipped" not in staged.findings.numbers["challenger_comparison"][key]:
                raise RuntimeError("the bench registry has a @challenger: shadow scoring not expected")
    for key in keys[1:]:
        with t("predictions_publish_s"):
            publish_month(deployment.predictions, key)
    predictions_done = time.perf_counter()

    for key in keys[1:]:
        with t("table_replace_s"):
            load_into_table(table, deployment.predictions, key)
    end = time.perf_counter()
    return {
        "total_s": end - start,
        "splits": t.seconds,
        "per_asset_s": {
            "ingest": ingest_done - start,
            "duration_model": model_done - ingest_done,
            "model_promotion": promotion_done - model_done,
            "trip_predictions": predictions_done - promotion_done,
            "prediction_table": end - predictions_done,
        },
        "model_versions": versions,
    }


def step_seconds(instance, run_id: str) -> dict[str, float]:
    return {
        stats.step_key: stats.end_time - stats.start_time
        for stats in instance.get_run_step_stats(run_id)
        if stats.start_time and stats.end_time
    }


@contextmanager
def timed_event_store(instance):
    """Count and time every event the instance stores, by type: the event log's share of a run's wall time.

    Wraps the storage object's `store_event` for the duration (every write, batched or not, goes through it)."""
    storage = instance.event_log_storage
    original = storage.store_event
    events: dict[str, list] = {}

    def store_event(event):
        start = time.perf_counter()
        try:
            return original(event)
        finally:
            kind = event.dagster_event_type.value if event.dagster_event_type else "LOG_MESSAGE"
            tally = events.setdefault(kind, [0, 0.0])
            tally[0] += 1
            tally[1] += time.perf_counter() - start

    storage.store_event = store_event
    try:
        yield events
    finally:
        del storage.store_event


def cmd_dagster(args) -> dict:
    """HOOK — Dagster's 12-month ranged backfill vs the same work without Dagster.

    Environment (set by run_bench.py before this process starts, read when deploy_assets.definitions loads):
    DEPLOY_ASSETS_DATA_URI, MLFLOW_TRACKING_URI, DEPLOY_ASSETS_PREDICTIONS_DB, DAGSTER_HOME,
    DEPLOY_ASSETS_FIRST_MONTH (= the month before the 12: it only trains the first model),
    DEPLOY_ASSETS_DEPLOYMENT_NAME and DEPLOY_ASSETS_DATASET (both --dataset: `yellow` or `green`).
    One deployment (`Settings.from_env()`, the one named after --dataset) with the shared
    resources and executor (`deploy_assets.deployment.standalone`); its assets are `<name>/...`.
    "The same work" = the job `<name>_month_end_to_end` = every materializable asset of the group: ingest
    (raw_trips + trip_statistics) of the 13 months, and duration_model, model_promotion, trip_predictions,
    prediction_table of the 12 (the observable landing_file and champion_model are not materialized by runs).
    Timed, in this order, against the same Dagster instance / MLflow store / data folder / DuckDB file:
      core        — core_compute_months() over the same 13 files (in-memory core, no MLflow/DuckDB/stores);
      single      — ingest[first] then <name>_month_end_to_end[second]: the first Dagster work in this process, so it
                    pays the lazy `import mlflow` and the MLflow sqlite schema creation (cold);
      loop        — ingest[first] then one <name>_month_end_to_end run per month, 12 runs in order (--loop);
      pure        — pure_same_work(): the ranged run's work, the same month steps the assets wrap;
      ranged      — ingest[first] then ONE <name>_month_end_to_end run over the 12-month range (the backfill);
      ranged_nc   — the ranged run of the job subset without asset checks (asset_check_selection=set()): the
                    checks are computed in-step, so Dagster may refuse it; its error is reported if so.
    pure, ranged and ranged_nc run --repeat times each, interleaved in a rotating order; medians are
    reported. Every measured run gets its own model `smoothing` (1e-9 apart), so each trains and REGISTERS its
    12 models like a first backfill (the same value would find them already registered).
    """
    scored = Month(args.year, args.month)
    months = (scored - 12).through(scored)
    core = core_compute_months(args.landing, months, Path(args.work) / "core_predictions", args.dataset)

    t0 = time.perf_counter()
    import dagster as dg

    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.deployment import standalone
    from deploy_assets.settings import Settings

    settings = Settings.from_env()
    if settings.dataset != args.dataset:
        raise SystemExit(f"--dataset {args.dataset} but DEPLOY_ASSETS_DATASET={settings.dataset} (see run_bench.py)")
    deployment = Deployment(settings)
    defs = standalone(settings)  # the deployment's assets and job with the shared resources and executor
    import_s = time.perf_counter() - t0
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(deployment.named("month_end_to_end"))
    asset_keys = set(job.asset_layer.asset_graph.materializable_asset_keys)
    try:  # the checks are computed in the assets' own steps: Dagster refuses a job of those assets without them
        job_without_checks = job.get_subset(asset_selection=asset_keys, asset_check_selection=set())
        without_checks_error = None
    except Exception as error:  # DagsterInvalidSubsetError
        job_without_checks, without_checks_error = None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
    ingest_keys = {deployment.key("raw_trips"), deployment.key("trip_statistics")}
    duration_model_op = deployment.key("duration_model").to_python_identifier()  # `<name>__duration_model`
    keys = [m.key for m in months]
    range_tags = {"dagster/asset_partition_range_start": keys[1], "dagster/asset_partition_range_end": keys[-1]}
    smoothing_values = iter(5.0 + i * 1e-9 for i in range(1, 10_000))

    def run_config() -> dict:
        return {
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            "ops": {duration_model_op: {"config": {"params": {"smoothing": next(smoothing_values)}}}},
        }

    def run(key: str | None, selection=None, tags=None, steps: dict | None = None, on=job, config=None) -> float:
        start = time.perf_counter()
        result = on.execute_in_process(
            partition_key=key, instance=instance, asset_selection=selection, tags=tags, raise_on_error=False,
            run_config=config or {"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        elapsed = time.perf_counter() - start
        if not result.success:
            failures = [str(e.message) for e in result.all_events if e.is_failure][:3]
            raise RuntimeError(f"dagster run for {key or tags} failed: {failures}")
        if steps is not None:
            for step, seconds in step_seconds(instance, result.run_id).items():
                steps[step] = steps.get(step, 0.0) + seconds
        return elapsed

    def ingest_first(steps: dict | None = None, on=job) -> float:
        return run(keys[0], selection=list(ingest_keys) if on is job else None, steps=steps, on=on)

    single_setup_s = ingest_first()
    single_s = run(keys[1], config=run_config())

    loop_steps: dict[str, float] = {}
    loop_runs: list[float] = []
    loop_s = None
    if args.loop:
        loop_start = time.perf_counter()
        loop_runs = [ingest_first(loop_steps)]
        config = run_config()  # one model parameter for the 12 runs, like one backfill
        loop_runs += [run(key, steps=loop_steps, config=config) for key in keys[1:]]
        loop_s = time.perf_counter() - loop_start

    # The same resources, deployment and months the Dagster runs use.
    resources = defs.resources
    pure_single = pure_same_work(resources, deployment, months[:2], next(smoothing_values))

    def measure_pure() -> tuple[float, dict]:
        pure = pure_same_work(resources, deployment, months, next(smoothing_values))
        return pure["total_s"], pure

    def measure_ranged(with_checks: bool) -> tuple[float, dict]:
        steps: dict[str, float] = {}
        on = job if with_checks else job_without_checks
        with timed_event_store(instance) as events:
            start = time.perf_counter()
            ingest_first(steps)
            run(None, tags=range_tags, steps=steps, on=on, config=run_config())
            elapsed = time.perf_counter() - start
        return elapsed, {"steps": steps, "events": events}

    measures = {
        "pure": measure_pure,
        "ranged": lambda: measure_ranged(True),
        "ranged_nc": lambda: measure_ranged(False),
    }
    results: dict[str, list[tuple[float, dict]]] = {name: [] for name in measures}
    errors: dict[str, str] = {"ranged_nc": without_checks_error} if without_checks_error else {}
    loads: list[float] = [os.getloadavg()[0]]
    names = list(measures)
    for repeat in range(args.repeat):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            if name in errors:
                continue
            try:
                results[name].append(measures[name]())
            except RuntimeError as error:  # reported; the paths that do run are still compared
                errors[name] = str(error)[:2000]
            loads.append(os.getloadavg()[0])
    rss = peak_rss_mib()

    def median(name: str) -> tuple[float | None, dict | None, list[float]]:
        runs = results.get(name) or []
        if not runs:
            return None, None, []
        ordered = sorted(runs, key=lambda r: r[0])
        seconds, detail = ordered[(len(ordered) - 1) // 2]
        return seconds, detail, [seconds for seconds, _ in runs]

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b - 1

    pure_s, pure, pure_runs = median("pure")
    ranged_s, ranged, ranged_runs = median("ranged")
    ranged_nc_s, ranged_nc, ranged_nc_runs = median("ranged_nc")
    ranged_steps = ranged["steps"] if ranged else None
    ranged_nc_steps = ranged_nc["steps"] if ranged_nc else None
    # The event log's share of the median ranged run: what Dagster's storage costs, apart from its execution.
    event_store_s = sum(seconds for _, seconds in ranged["events"].values()) if ranged else None
    best = {name: min(r for r, _ in runs) if runs else None for name, runs in results.items()}
    return {
        "path": "dagster",
        "rows_per_month": args.rows,
        "months": keys,
        "repeat": args.repeat,
        "deployment": deployment.name,
        "dataset": settings.dataset,
        "same_work": f"{job.name}: ingest (raw_trips + trip_statistics) of 13 months; duration_model,"
                     " model_promotion, trip_predictions, prediction_table of 12; checks in-step",
        "import_definitions_s": import_s,
        "loadavg_1m_during": loads,
        # core compute only (the in-memory core, no MLflow/DuckDB/stored assets)
        "core_compute_12_s": core["total_s"],
        "core_compute_splits": core["splits"],
        "core_compute_single_partition_s": core["per_month_s"][0] + core["per_month_s"][1],
        # the same work as the backfill, without Dagster (median of --repeat runs)
        "pure_same_work_s": pure_s,
        "pure_same_work_runs_s": pure_runs,
        "pure_same_work_splits": pure["splits"] if pure else None,
        "pure_same_work_per_asset_s": pure["per_asset_s"] if pure else None,
        "pure_same_work_single_partition_s": pure_single["total_s"],
        # Dagster
        "single_setup_ingest_s": single_setup_s,
        "single_partition_s": single_s,
        "single_partition_with_setup_s": single_setup_s + single_s,
        "loop_backfill_12_s": loop_s,
        "loop_run_s": loop_runs,
        "loop_step_seconds": loop_steps or None,
        "loop_outside_steps_s": loop_s - sum(loop_steps.values()) if loop_s else None,
        "loop_overhead_ratio": ratio(loop_s, pure_s),
        "ranged_backfill_12_s": ranged_s,
        "ranged_backfill_runs_s": ranged_runs,
        "ranged_step_seconds": ranged_steps,
        "ranged_outside_steps_s": ranged_s - sum(ranged_steps.values()) if ranged_s else None,
        "ranged_events": {kind: {"count": n, "store_s": seconds} for kind, (n, seconds) in
                          sorted(ranged["events"].items(), key=lambda item: -item[1][1])} if ranged else None,
        "ranged_event_store_s": event_store_s,
        "ranged_no_checks_12_s": ranged_nc_s,
        "ranged_no_checks_runs_s": ranged_nc_runs,
        "ranged_no_checks_step_seconds": ranged_nc_steps,
        "ranged_no_checks_outside_steps_s": ranged_nc_s - sum(ranged_nc_steps.values()) if ranged_nc_s else None,
        "ranged_no_checks_error": errors.get("ranged_nc"),
        "errors": errors,
        "backfill_12_s": ranged_s,
        # orchestration overhead = Dagster ranged backfill / the same work without Dagster − 1 (medians) ...
        "overhead_ratio": ratio(ranged_s, pure_s),
        # ... and from the best run of each (less sensitive to other load on the machine)
        "overhead_ratio_best_runs": ratio(best["ranged"], best["pure"]),
        "overhead_vs_core_compute": ratio(ranged_s, core["total_s"]),
        # ... and without the time spent storing events (Dagster's execution alone vs the same work)
        "overhead_ratio_excluding_event_store": ratio(None if ranged_s is None else ranged_s - event_store_s, pure_s),
        "peak_rss_mib": rss,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="write cProfile stats of the whole subcommand to this file")
    parser.add_argument("--dataset", choices=TLC_DATASETS, default="yellow",
                        help="the TLC service of the months generated and read (deploy_assets.core.datasets)")
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
    p.add_argument("--stored", required=True, help="where the ingest step stores the cleaned month")
    p.add_argument("--model-out", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score")
    p.add_argument("--file", required=True)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--month", type=int, required=True)
    p.add_argument("--stored", required=True, help="where the ingest step stores the cleaned month")
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
    p.add_argument("--stored", required=True, help="the cleaned month the scoring step reads")
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
                   help="runs of the same-work (± checks) / ranged (± checks) paths, interleaved; medians reported")
    p.add_argument("--loop", action=argparse.BooleanOptionalAction, default=True,
                   help="also time 12 one-month runs in a row (default on)")
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
