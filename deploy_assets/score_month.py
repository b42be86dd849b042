"""Score one month end to end and exit: the seed's `docker run`, as a one-shot command of the image.

    docker run --rm -e DATE=2021-03-01 -e BUCKET=my-bucket \
        -e MLFLOW_TRACKING_URI=https://mlflow.internal deploy-assets:TAG deploy-assets-score-month
    deploy-assets-score-month --date 2021-03              # the same, outside Docker

Scores month M for every deployment declared under `defs/` whose landing file for M is there (`DEPLOYMENT` names
one instead): for each, what its `<name>_month_end_to_end` job materializes (ingest, model, promotion,
predictions, predictions table) in this process, after ingesting the months M's model trains on (M-k … M-1, k =
its training window), from the landing files of those months; M is scored after M's model and its promotion. Idempotent: a re-run replaces M's outputs.

Environment (flags override):

| variable | what |
|---|---|
| `DATE` (the seed's) or `DEPLOY_ASSETS_MONTH` | any day of the month to score, or `YYYY-MM` |
| `DEPLOYMENT` (or `DEPLOY_ASSETS_DEPLOYMENT_NAME`) | score only this deployment |
| `BUCKET` (+ `PREFIX`, default `deploy-assets`) | sets `DEPLOY_ASSETS_DATA_URI=s3://BUCKET/PREFIX` unless that is set; then an unset `MLFLOW_TRACKING_URI` / `DEPLOY_ASSETS_PREDICTIONS_DB` means a registry / table for this run only, in a temporary folder (models and predictions still land in the bucket) |
| `DEPLOY_ASSETS_*`, `MLFLOW_TRACKING_URI`, `AWS_*` | as for the code location (README, "Configuration") |
| `DAGSTER_HOME` + `SCORE_MONTH_INSTANCE=home` | record the runs in that instance; default: a throw-away one, as the seed has no orchestrator |

Exit status: 0 when every asset of the month was materialized for every deployment scored; 1 when one failed,
with one line on stderr per failed deployment, `score-month <partition> failed: <step>: <cause>` (the cause names
the deployment's asset and the partition); 2 for a bad argument, or when no deployment has a file for the month
(the message says which files it looked for, and which deployments start after the month). The last line on
stdout is a JSON summary: `{"partition": …, "scored": [one summary per deployment]}`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Mapping

from deploy_assets.core.months import Month
from deploy_assets.declared import declared_settings
from deploy_assets.settings import ScoreMonthSettings, Settings


class UsageError(ValueError):
    pass


def partition_of(date: str) -> str:
    """'2021-03-01', '2021-03-17', '2021-03' or '2021-03-01T00:00' → '2021-03-01'."""
    try:
        return Month.parse(date).key
    except ValueError:
        raise UsageError(f"DATE={date!r}: expected a date in the month to score, YYYY-MM-DD or YYYY-MM") from None


def apply_seed_settings(settings: Settings, command: ScoreMonthSettings, scratch: str | None = None) -> tuple[Settings, list[str]]:
    """The seed's variables onto the project's settings: BUCKET (+ PREFIX) → the data location.

    With BUCKET, the data lives in the bucket and the container is thrown away: the stores that default to the
    repository's folder (MLflow tracking, the DuckDB table) go to `scratch` instead, unless they are set.
    MLflow's artifacts (the models) still go to the bucket. Returns the settings and what changed, for the log.
    """
    bucket = (command.bucket or "").strip()
    if not bucket:
        return settings, []
    defaults, changes, notes = Settings(), {}, []
    data_uri = settings.data_uri
    if data_uri == defaults.data_uri:
        bucket = bucket.removeprefix("s3://").strip("/")
        prefix = command.prefix.strip("/")
        data_uri = changes["data_uri"] = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        notes.append(f"DEPLOY_ASSETS_DATA_URI={data_uri}")
    if scratch is not None:
        if settings.mlflow_tracking_uri == defaults.mlflow_tracking_uri:
            changes["mlflow_tracking_uri"] = f"sqlite:///{scratch}/mlflow.db"
            changes["mlflow_artifacts"] = settings.mlflow_artifacts or f"{data_uri}/mlflow-artifacts"
            notes.append("MLFLOW_TRACKING_URI unset: a registry for this run only (models kept in the bucket)")
        if settings.predictions_db == defaults.predictions_db:
            changes["predictions_db"] = f"duckdb:///{scratch}/predictions.duckdb"
            notes.append("DEPLOY_ASSETS_PREDICTIONS_DB unset: the predictions table of this run only")
    return dataclasses.replace(settings, **changes), notes


def deployments_to_score(partition: str, declared: Mapping[str, Settings], only: str | None = None) -> list[Settings]:
    """The deployments that score `partition`: `only`, or every declared one whose landing file for the month is
    there (a landing on the TLC's site is taken as holding every month). A UsageError says what was looked for
    when none has the month."""
    from deploy_assets.assets.monthly import Deployment

    if only is not None and only not in declared:
        raise UsageError(f"DEPLOYMENT={only!r}: no such deployment under defs/ (declared: {', '.join(declared)})")
    month, chosen, looked = Month.from_key(partition), [], []
    for name, settings in declared.items():
        if only is not None and name != only:
            continue
        deployment = Deployment(settings)
        months, landing = deployment.months, deployment.landing
        if month < months.first:
            looked.append(f"{name} starts in {months.first.key}")
        elif month > months.newest:
            looked.append(f"{name} ends in {months.newest.key}")
        elif landing.uri.startswith(("http://", "https://")) or landing.landed_file(*month.pair) is not None:
            chosen.append(settings)
        else:
            looked.append(f"{name}: no {landing.file_name(*month.pair)}")
    if not chosen:
        where = {Deployment(s).landing.uri for s in declared.values() if only in (None, s.name)}
        raise UsageError(f"no deployment has a file for {partition} in {', '.join(sorted(where))} ({'; '.join(looked)})")
    return chosen


def _failure(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            message = (error.message or "").strip() if error else "failed"
            # "dagster._core.definitions.events.Failure: raw_trips[2024-03-01] failed: ..." → the part after the class
            return f"{event.step_key}: {message.split(': ', 1)[-1] if message.startswith('dagster.') else message}"
    return "the run failed before any step ran"


def _instance(command: ScoreMonthSettings):
    import dagster as dg

    if command.instance == "home":
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def score_month(partition: str, settings: Settings, command: ScoreMonthSettings) -> dict:
    """Materialize the month in the command's instance; returns a summary. Raises RuntimeError naming the failed
    step."""
    return materialize_month(partition, settings, _instance(command), command.log_level)


def materialize_month(partition: str, settings: Settings, instance, log_level: str = "INFO") -> dict:
    """The deployment's month end to end in `instance` (the months its model trains on ingested first); returns
    a summary. Raises RuntimeError naming the failed step."""
    from deploy_assets.assets.monthly import Deployment
    from deploy_assets.deployment import standalone

    deployment = Deployment(settings)
    defs = standalone(settings)
    job = defs.resolve_job_def(deployment.named("month_end_to_end"))
    if partition not in job.partitions_def.get_partition_keys():
        raise UsageError(
            f"{partition} is not a partition of {settings.name} (first month {deployment.months.first.key}, last"
            f" {deployment.months.newest.key})"
        )
    training = deployment.months.training_keys(partition)
    ingest = [deployment.key("raw_trips"), deployment.key("trip_statistics")]
    scoring = {deployment.key("trip_predictions"), deployment.key("prediction_table")}
    # Scoring last: under the champion policy M is scored by @champion once M's own model had its promotion
    # decision (nothing in the graph orders the two: @champion is observed, not materialized).
    deciding = [key for key in job.asset_layer.selected_asset_keys if key not in scoring]

    quiet = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    started = time.perf_counter()
    runs = []
    # M's model trains on the months before M: their raw trips first, then every asset of M.
    for key, selection in [*((month, ingest) for month in training), (partition, deciding), (partition, sorted(scoring))]:
        result = job.execute_in_process(
            partition_key=key, instance=instance, asset_selection=selection, run_config=quiet, raise_on_error=False
        )
        runs.append(result.run_id)
        if not result.success:
            what = "ingesting training month " + key + " for " if key != partition else ""
            raise RuntimeError(f"{what}{_failure(result)}")

    year, month = Month.from_key(partition).pair
    store = deployment.predictions
    predictions = store.read_month(year, month)
    return {
        "deployment": settings.name,
        "partition": partition,
        "training_months": training,
        "predictions_uri": str(store.month_path(year, month)),
        "rows": predictions.num_rows,
        "model_versions": sorted(set(predictions.column("model_version").to_pylist())),
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    command = ScoreMonthSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="deploy-assets-score-month",
        description="Score one month end to end (ingest, model, predictions, table) and exit.",
    )
    parser.add_argument("--date", default=command.date, help="any day of the month, or YYYY-MM (default: $DATE, $DEPLOY_ASSETS_MONTH)")
    parser.add_argument("--bucket", default=command.bucket, help="s3 bucket for every data location (default: $BUCKET)")
    args = parser.parse_args(argv)
    command = dataclasses.replace(command, date=args.date, bucket=args.bucket)
    scratch = tempfile.mkdtemp(prefix="score-month-")
    try:
        if not command.date:
            raise UsageError("set DATE (e.g. -e DATE=2021-03-01) or pass --date")
        partition = partition_of(command.date)
        seeded = {
            name: apply_seed_settings(settings, command, scratch=scratch)
            for name, settings in declared_settings().items()
        }
        chosen = deployments_to_score(partition, {name: s for name, (s, _) in seeded.items()}, command.deployment)
    except (UsageError, ValueError) as error:
        print(f"score-month: {error}", file=sys.stderr)
        return 2
    for note in seeded[chosen[0].name][1]:
        print(f"score-month {partition}: {note}", flush=True)
    print(f"score-month {partition}: data in {chosen[0].data_uri}; scoring {', '.join(s.name for s in chosen)}", flush=True)
    scored, failed = [], 0
    for settings in chosen:
        try:
            summary = score_month(partition, settings, command)
        except Exception as error:  # noqa: BLE001 - one line naming the deployment's step, then the next deployment
            print(f"score-month {partition} failed: {error}", file=sys.stderr, flush=True)
            failed += 1
            continue
        scored.append(summary)
        print(f"score-month {partition}: {settings.name}: {summary['rows']} predictions in {summary['predictions_uri']}")
    print(json.dumps({"partition": partition, "scored": scored}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
