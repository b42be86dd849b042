"""What a Dagster instance recorded, as the daemon tests read it: materializations, observations, runs, sensor ticks,
and the bounded wait until nothing runs and automation has nothing more to request.

Assets and sensors are named as a deployment names them (`raw_trips` is `yellow/raw_trips`, `landing_sensor` is
`yellow_landing_sensor`): the deployment is `yellow` (the one the daemon tests feed) unless `deployment` says
otherwise."""

from __future__ import annotations

import dagster as dg

from deploy_assets.core.months import Month

DEPLOYMENT = "yellow"


def asset_key(asset: str, deployment: str = DEPLOYMENT) -> dg.AssetKey:
    """The deployment's asset `asset`: `<deployment>/<asset>`."""
    return dg.AssetKey([deployment, asset])


def materialized_partitions(instance: dg.DagsterInstance, asset: str, deployment: str = DEPLOYMENT) -> list[str]:
    """The partition of every materialization of the deployment's `asset`, sorted (a month materialized twice
    appears twice)."""
    records = instance.fetch_materializations(asset_key(asset, deployment), limit=10_000).records
    return sorted(record.partition_key for record in records)


def landing_observations(
    instance: dg.DagsterInstance, *, by_runs: bool, deployment: str = DEPLOYMENT
) -> list[tuple[str, str]]:
    """(month, data version) of the observations of the deployment's landing_file, oldest first: those its landing
    sensor reported (no run), or those the ingest runs recorded of the file they read."""
    records = instance.fetch_observations(asset_key("landing_file", deployment), limit=10_000).records
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
    """Evaluations of the sensor `name` (its full name: `yellow_landing_sensor`, `failure_alert_sensor`) recorded
    so far."""
    count = 0
    for state in instance.all_instigator_state():
        if state.name == name:
            count += len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10_000))
    return count


def automation_ticks(instance: dg.DagsterInstance, deployment: str = DEPLOYMENT) -> int:
    """Evaluations of the deployment's automation sensor (`<deployment>_automation_sensor`) recorded so far."""
    return sensor_ticks(instance, f"{deployment}_automation_sensor")


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
    instance: dg.DagsterInstance, done, describe=lambda: "", timeout: float = 240.0, ticks: int = 3,
    deployment: str = DEPLOYMENT,
) -> None:
    """Until `done()` holds with nothing running, then until the deployment's automation sensor has evaluated
    `ticks` more times and nothing runs (what it would launch next has been launched and finished): "nothing more happens"
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
    start = automation_ticks(instance, deployment)
    until(lambda: automation_ticks(instance, deployment) >= start + ticks, f"{ticks} more automation ticks", 120)
    until(lambda: not busy(instance), "nothing running after those ticks", timeout)
