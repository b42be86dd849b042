"""Helpers shared by the bad-input and fault tests (test_bad_inputs.py, test_faults.py).

- `run_month`: materialize a selection of one month through the REAL assets *and* their asset checks, in process,
  on the `project` fixture's instance and resources (what the `month_end_to_end` job runs: its asset-group
  selection includes the checks).
- `MonthSnapshot`: everything a month has published (predictions object bytes, the files beside it, its rows in
  the SQL table, the stored raw_trips object), to assert that a failed run changed none of it.
- Run/event inspection: failure messages, retries, which steps ran.

The network-fault proxy is `tcp_proxy.py`; what a daemon's instance recorded, `instance_records.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.definitions import defs
from deploy_assets.partitions import year_month

ALL_ASSETS = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]


def model_config(model: str) -> dict:
    return {"ops": {"trip_predictions": {"config": {"model": model}}}}


# The step (op) that materializes each asset: raw_trips and trip_statistics are written by one step, `ingest`.
STEP = {"raw_trips": "ingest", "trip_statistics": "ingest"}


def step_of(asset: str) -> str:
    return STEP.get(asset, asset)


def run_month(
    project, selection: list[str], partition_key: str, run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` of one month with the asset checks of the selected assets (never raises). Selecting
    raw_trips selects its step's other output (trip_statistics) too, as the UI and the job do."""
    return dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        selection=dg.AssetSelection.assets(*selection).required_multi_asset_neighbors(),
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
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def failure_message(result: dg.ExecuteInProcessResult, node: str) -> str:
    """The error message of `node`'s final failure (what the UI shows for the failed step); `node` is a step or
    the asset it materializes."""
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
    table_rows: tuple[tuple, ...]  # the month's rows in the SQL table, ordered by ride_id
    raw_trips: bytes | None  # the stored raw_trips object of the month

    @property
    def is_empty(self) -> bool:
        return self.predictions is None and not self.files and not self.table_rows


def table_rows(project, partition_key: str) -> tuple[tuple, ...]:
    import duckdb

    path = Path(project.warehouse.url.removeprefix("duckdb:///"))
    if not path.exists():
        return ()
    with duckdb.connect(str(path), read_only=True) as connection:
        exists = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'trip_predictions'"
        ).fetchone()[0]
        if not exists:
            return ()
        rows = connection.execute(
            "SELECT * FROM trip_predictions WHERE month = CAST(? AS DATE) ORDER BY ride_id", [partition_key]
        ).fetchall()
    return tuple(rows)


def raw_trips_path(project, partition_key: str) -> Path:
    return Path(project.resources["parquet_io_manager"].uri) / "raw_trips" / f"{partition_key}.parquet"


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
