"""Helpers shared by the bad-input and fault tests (test_bad_inputs.py, test_faults.py).

- `run_month`: materialize a selection of one month through the REAL assets *and* their asset checks, in process,
  on the `project` fixture's instance and resources (what the `month_end_to_end` job runs: its asset-group
  selection includes the checks).
- `MonthSnapshot`: everything a month has published (predictions object bytes, the files beside it, its rows in
  the SQL table, the stored raw_trips object), to assert that a failed run changed none of it.
- Run/event inspection: failure messages, retries, which steps ran.
- `TcpProxy`: a loopback TCP forwarder in front of a real server, which can refuse connections or cut them after
  some bytes: a real network failure between a client and a server whose state survives for inspection.
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.definitions import defs
from deploy_assets.core.months import Month
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


# --- a TCP proxy for network faults ---------------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream TCP server, in background threads.

    - `refuse()`: stop listening and drop open connections; clients get "connection refused" (the endpoint is
      down), the upstream server keeps its state. `restore()` listens again on the same port.
    - `cut_uploads_after(n)`: any connection that has sent more than `n` bytes upstream is reset mid-stream (a
      network failure in the middle of an upload; requests without a large body pass).
    """

    def __init__(self, upstream_port: int, host: str = "127.0.0.1"):
        self.host = host
        self.upstream_port = upstream_port
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.upload_limit: int | None = None
        self.cut_connections = 0

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port or 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop = threading.Event()
        thread = threading.Thread(target=self._accept_loop, args=(listener, self._stop), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def refuse(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._drop_connections()

    def restore(self) -> None:
        self.upload_limit = None
        if self._listener is None:
            self.start()

    def cut_uploads_after(self, limit: int | None) -> None:
        self.upload_limit = limit

    def close(self) -> None:
        self.refuse()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _drop_connections(self) -> None:
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for connection in connections:
            _close(connection)

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed by refuse()
                return
            try:
                upstream = socket.create_connection((self.host, self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream, stop), daemon=True)
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket, stop: threading.Event) -> None:
        sent_upstream = 0
        try:
            while not stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        sent_upstream += len(data)
                        if self.upload_limit is not None and sent_upstream > self.upload_limit:
                            self.cut_connections += 1
                            # Forward what fits under the limit, then reset both sides (RST, not a clean close).
                            keep = max(0, len(data) - (sent_upstream - self.upload_limit))
                            if keep:
                                upstream.sendall(data[:keep])
                            _reset(client)
                            _reset(upstream)
                            return
                        upstream.sendall(data)
                    else:
                        client.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(client)
            _close(upstream)
            with self._lock:
                self._connections.discard(client)
                self._connections.discard(upstream)


def _reset(sock: socket.socket) -> None:
    try:
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def materialized_partitions(instance: dg.DagsterInstance, asset: str) -> list[str]:
    """The partition of every materialization of `asset`, sorted (a month materialized twice appears twice)."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records
    return sorted(record.partition_key for record in records)


def landing_observations(instance: dg.DagsterInstance, *, by_runs: bool) -> list[tuple[str, str]]:
    """(month, data version) of the observations of landing_file, oldest first: those the landing sensor reported
    (no run), or those the ingest runs recorded of the file they read."""
    records = instance.fetch_observations(dg.AssetKey("landing_file"), limit=10_000).records
    return [
        (r.partition_key, r.asset_observation.data_version)
        for r in reversed(records)
        if bool(r.event_log_entry.run_id) == by_runs
    ]


def run_partitions(run: dg.DagsterRun) -> list[str]:
    """The months a run targets: its partition, or every month of its partition range (single-run backfills)."""
    if "dagster/partition" in run.tags:
        return [run.tags["dagster/partition"]]
    start, end = run.tags.get("dagster/asset_partition_range_start"), run.tags.get("dagster/asset_partition_range_end")
    if start is None:
        return []
    return [m.key for m in Month.from_key(start).through(Month.from_key(end))]


def sensor_ticks(instance: dg.DagsterInstance, name: str) -> int:
    """Evaluations of the sensor `name` recorded so far."""
    count = 0
    for state in instance.all_instigator_state():
        if state.name == name:
            count += len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10_000))
    return count


def automation_ticks(instance: dg.DagsterInstance) -> int:
    """Evaluations of Dagster's automation sensor recorded so far."""
    return sensor_ticks(instance, "automation_sensor")


def busy(instance: dg.DagsterInstance) -> bool:
    """A run queued or in progress, or a backfill (automation launches backfills) not finished."""
    from dagster._core.execution.backfill import BulkActionStatus

    active = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ]
        )
    )
    return bool(active) or any(b.status == BulkActionStatus.REQUESTED for b in instance.get_backfills())


def wait_until_quiet(
    instance: dg.DagsterInstance, done, describe=lambda: "", timeout: float = 240.0, ticks: int = 3
) -> None:
    """Until `done()` holds with nothing running, then until the automation sensor has evaluated `ticks` more
    times and nothing runs (what it would launch next has been launched and finished): "nothing more happens"
    proven by ticks, not by a sleep. Fails at once on a failed run."""
    import time

    def until(condition, what: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            if failed:
                raise AssertionError(f"run {failed[0].run_id} failed while waiting for {what}\n{describe()}")
            if condition():
                return
            time.sleep(0.5)
        raise AssertionError(f"not reached within {limit:.0f}s: {what}\n{describe()}")

    until(lambda: done() and not busy(instance), "the expected state with nothing running", timeout)
    start = automation_ticks(instance)
    until(lambda: automation_ticks(instance) >= start + ticks, f"{ticks} more automation ticks", 120)
    until(lambda: not busy(instance), "nothing running after those ticks", timeout)
