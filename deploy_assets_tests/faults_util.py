"""Helpers shared by the bad-input and fault tests (test_bad_inputs.py, test_faults.py).

- `run_month`: materialize a selection of one month through the REAL assets *and* their asset checks of the
  `project` fixture's deployment, in process, on its instance and resources (what the `<name>_month_end_to_end`
  job runs: its asset-group selection includes the checks).
- `MonthSnapshot`: everything a month has published (predictions object bytes, the files beside it, its rows in
  the SQL table, the stored raw_trips object), to assert that a failed run changed none of it.
- Run/event inspection: failure messages, retries, which steps ran.

Assets are named by their name in the deployment (`raw_trips`: the key `yellow/raw_trips`); what a run reports
(`materialized`) is the assets' user strings (`yellow/raw_trips`), as the UI shows them.

The network-fault proxy is `tcp_proxy.py`; what a daemon's instance recorded, `instance_records.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.partitions import year_month

DEPLOYMENT = "yellow"  # the `project` fixture's deployment
ALL_ASSETS = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]
MATERIALIZABLE = ["raw_trips", "trip_statistics", "duration_model", "model_promotion", "trip_predictions",
                  "prediction_table"]
# raw_trips and trip_statistics are written by one step, the deployment's `<name>_ingest`.
INGESTED = ("raw_trips", "trip_statistics")


def step_of(asset: str, deployment: str = DEPLOYMENT) -> str:
    """The step (op) that materializes the deployment's `asset`: `yellow_ingest` for raw_trips and
    trip_statistics, `yellow__<asset>` for the others (Dagster's op name of a prefixed asset); a step's own name
    is returned as it is."""
    if asset in INGESTED:
        return f"{deployment}_ingest"
    if asset in MATERIALIZABLE:
        return f"{deployment}__{asset}"
    return asset


def model_config(model: str, deployment: str = DEPLOYMENT) -> dict:
    return {"ops": {step_of("trip_predictions", deployment): {"config": {"model": model}}}}


def run_month(
    project, selection: list[str], partition_key: str, run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (the deployment's assets by name) of one month with the asset checks of the
    selected assets (never raises). Selecting raw_trips selects its step's other output (trip_statistics) too, as
    the UI and the job do."""
    defs = project.defs
    keys = [project.key(asset) if isinstance(asset, str) else asset for asset in selection]
    return dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        selection=dg.AssetSelection.assets(*keys).required_multi_asset_neighbors(),
        partition_key=partition_key,
        instance=project.instance,
        resources=project.resources,
        run_config=run_config,
        raise_on_error=False,
    )


# --- what a run did ------------------------------------------------------------------------------------------------


def events_of_type(result: dg.ExecuteInProcessResult, event_type: str) -> list[dg.DagsterEvent]:
    return [event for event in result.all_events if event.event_type_value == event_type]


def steps_with(result: dg.ExecuteInProcessResult, event_type: str) -> set[str]:
    return {event.step_key for event in events_of_type(result, event_type) if event.step_key}


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    """The user strings of the assets a run materialized: `yellow/raw_trips`."""
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def failure_message(result: dg.ExecuteInProcessResult, node: str) -> str:
    """The error message of `node`'s final failure (what the UI shows for the failed step); `node` is a step or
    the deployment's asset it materializes."""
    node = step_of(node)
    data = result.failure_data_for_node(node)
    assert data is not None, (
        f"expected {node} to fail; failed steps: {sorted(steps_with(result, 'STEP_FAILURE'))},"
        f" succeeded: {sorted(steps_with(result, 'STEP_SUCCESS'))}"
    )
    return data.error.message


def failure_chain(result: dg.ExecuteInProcessResult, node: str) -> list[str]:
    """`node`'s final error and its causes, outermost first, as the UI shows them ("The above exception was
    caused by ..."). After the retries run out the outermost is Dagster's "Exceeded max_retries of 3"."""
    node = step_of(node)
    data = result.failure_data_for_node(node)
    assert data is not None, f"expected {node} to fail; failed steps: {sorted(steps_with(result, 'STEP_FAILURE'))}"
    chain, error = [], data.error
    while error is not None:
        chain.append(f"{error.cls_name}: {error.message.strip()}")
        error = error.cause
    return chain


def retry_messages(result: dg.ExecuteInProcessResult, node: str) -> list[str]:
    """One message per failed attempt that was retried (STEP_UP_FOR_RETRY events of `node`): the attempt's own
    error (the cause of Dagster's RetryRequestedFromPolicy wrapper)."""
    node = step_of(node)
    return [
        retried_error(event.event_specific_data.error)
        for event in events_of_type(result, "STEP_UP_FOR_RETRY")
        if event.step_key == node
    ]


def retried_error(error) -> str:
    """The message of the error that made an attempt fail, below Dagster's retry wrapper."""
    while error.cause is not None and error.cls_name == "RetryRequestedFromPolicy":
        error = error.cause
    return error.message.strip()


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def run_log_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every event of a run serialized (messages, error chains with stack traces, metadata), plus its config."""
    from dagster_shared.serdes import serialize_value

    run = instance.get_run_by_id(run_id)
    parts = [serialize_value(record) for record in instance.all_logs(run_id)]
    parts.append(repr(run.run_config) if run else "")
    parts.append(repr(run.tags) if run else "")
    return "\n".join(parts)


# --- what a month has published ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthSnapshot:
    predictions: bytes | None  # the object's bytes, None if absent
    files: tuple[str, ...]  # everything in the month's folder (temporary files included)
    table_rows: tuple[tuple, ...]  # the month's rows in the deployment's SQL table, ordered by ride_id
    raw_trips: bytes | None  # the stored raw_trips object of the month

    @property
    def is_empty(self) -> bool:
        return self.predictions is None and not self.files and not self.table_rows


def table_rows(project, partition_key: str) -> tuple[tuple, ...]:
    import duckdb

    warehouse = project.warehouse  # bound to the deployment's table
    path = Path(warehouse.url.removeprefix("duckdb:///"))
    if not path.exists():
        return ()
    with duckdb.connect(str(path), read_only=True) as connection:
        exists = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [warehouse.table]
        ).fetchone()[0]
        if not exists:
            return ()
        rows = connection.execute(
            f"SELECT * FROM {warehouse.table} WHERE month = CAST(? AS DATE) ORDER BY ride_id", [partition_key]
        ).fetchall()
    return tuple(rows)


def raw_trips_path(project, partition_key: str) -> Path:
    """The stored month of the deployment's raw_trips: `<warehouse>/<name>/raw_trips/<YYYY-MM-DD>.parquet`."""
    root = Path(project.resources["parquet_io_manager"].uri)
    return root.joinpath(*project.key("raw_trips").path) / f"{partition_key}.parquet"


def snapshot(project, partition_key: str) -> MonthSnapshot:
    path = project.predictions.month_path(*year_month(partition_key))
    folder = path.parent
    raw = raw_trips_path(project, partition_key)
    return MonthSnapshot(
        predictions=path.read_bytes() if path.exists() else None,
        files=tuple(sorted(p.name for p in folder.iterdir())) if folder.exists() else (),
        table_rows=table_rows(project, partition_key),
        raw_trips=raw.read_bytes() if raw.exists() else None,
    )
