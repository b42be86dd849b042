"""The sensors that report what Dagster cannot see by itself; they launch nothing (automation does, `automation.py`).

- `landing_sensor` lists the landing prefix and reports an observation of `landing_file[M]` whose data version is
  the object's ETag, for every month whose ETag changed. Dagster counts a new data version (not a new
  observation) as an update, so re-reporting is harmless.
- `champion_sensor` reads the registry's @champion and reports it on every month of `champion_model` when it moves,
  once no run that scores the deployment's months is in progress. A scoring run reads @champion when it starts; a
  move reported while it runs would be absorbed by its materialization (Dagster's `since_last_handled` resets on
  it) and the months it scored with the old version would never be re-scored. Reported after it, the move is an
  update of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from deploy_assets.assets.champion import CHAMPION_MODEL, champion_versions
from deploy_assets.assets.landing import LANDING_FILE, landing_observation, sort_landing
from deploy_assets.assets.monthly import Deployment
from deploy_assets.automation import sensor_minimum_interval
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.landing import LandedFile


def parse_landing_cursor(raw: str | None) -> dict[str, LandedFile]:
    """The previous listing, by object name (JSON). An unreadable cursor is an empty one: reporting is idempotent."""
    try:
        state = json.loads(raw) if raw else {}
        return {
            name: LandedFile(**{**fields, "last_modified": datetime.fromisoformat(fields["last_modified"])})
            for name, fields in state.get("objects", {}).items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def landing_cursor(files: list[LandedFile]) -> str:
    objects = {f.name: {**asdict(f), "last_modified": f.last_modified.isoformat()} for f in files}
    return json.dumps({"version": 1, "objects": objects}, sort_keys=True)


def reported_versions(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_keys: list[str]) -> dict:
    """The data version last reported for each of these partitions of an observed asset."""
    versions = {}
    for key in partition_keys:
        record = instance.get_latest_data_version_record(asset_key, is_source=True, partition_key=key)
        if record is not None and record.asset_observation is not None:
            versions[key] = record.asset_observation.data_version
    return versions


IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def runs_scoring(instance: dg.DagsterInstance, deployment: Deployment) -> list[str]:
    """The runs queued or in progress that materialize the deployment's trip_predictions (a selection that holds
    it, or the whole month job)."""
    predictions, month_job = deployment.key("trip_predictions"), deployment.named("month_end_to_end")
    return [
        run.run_id
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
        if (predictions in run.asset_selection if run.asset_selection is not None else run.job_name == month_job)
    ]


def automation_saw_last_scoring(instance: dg.DagsterInstance, deployment: Deployment) -> bool:
    """Whether the deployment's automation sensor has evaluated since its newest trip_predictions materialization
    (true without one, or without an automation sensor). A move reported before that evaluation would reach
    automation in the same tick as the materialization, which would absorb it for that month."""
    event = instance.get_latest_materialization_event(deployment.key("trip_predictions"))
    if event is None:
        return True
    name = deployment.named("automation_sensor")
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.name == name:
            ticks = instance.get_ticks(
                state.instigator_origin_id, state.selector_id, limit=1, statuses=[TickStatus.SUCCESS, TickStatus.SKIPPED]
            )
            return bool(ticks) and ticks[0].timestamp > event.timestamp
    return True


def build_reporting_sensors(deployment: Deployment) -> list[dg.SensorDefinition]:
    """The deployment's landing and champion sensors (`<name>_landing_sensor`, `<name>_champion_sensor`), each
    with its own cursor, evaluated every `sensor_interval_seconds`."""
    minimum_interval = sensor_minimum_interval(deployment.settings.sensor_interval_seconds)
    months, landing = deployment.months, deployment.landing
    landing_file, champion_model = deployment.key(LANDING_FILE), deployment.key(CHAMPION_MODEL)

    @dg.sensor(
        name=deployment.named("landing_sensor"),
        minimum_interval_seconds=minimum_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Lists the landing prefix and reports landing_file[M] (data version = ETag) for every month that changed.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        previous = parse_landing_cursor(context.cursor)
        files = landing.list_files(known=previous)
        listing = sort_landing(files, months, landing.tlc_dataset)
        new = {f.name for f in files if previous.get(f.name) is None or previous[f.name].etag != f.etag}
        for name, reason in listing.skipped.items():
            if name in new:  # one log line per stray object (and per change of it), not one per tick
                context.log.info(f"skipping landing object {name!r}: {reason}")
        changed = {key: landed for key, landed in listing.months.items() if landed.name in new}
        # A first look (or a lost cursor) asks the instance what was reported before, so nothing is reported twice.
        already = reported_versions(context.instance, landing_file, [k for k, f in changed.items() if f.name not in previous])
        events = []
        for key, landed in sorted(changed.items()):
            if already.get(key) == landed.etag:
                continue
            context.log.info(f"{landed.uri} → {landing_file.to_user_string()}[{key}] version {landed.etag}")
            events.append(landing_observation(landing_file, key, landed))
        return dg.SensorResult(
            asset_events=events,
            cursor=landing_cursor(files),
            skip_reason=None if events else f"no new or changed TLC files in {landing.uri}",
        )

    @dg.sensor(
        name=deployment.named("champion_sensor"),
        minimum_interval_seconds=minimum_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reports the registry's @champion on champion_model (every month) when the alias moves.",
    )
    def champion_sensor(context: dg.SensorEvaluationContext, registry: ModelRegistry) -> dg.SensorResult:
        model = deployment.model(registry)
        version = model.champion_version()
        if version is None or version == context.cursor:
            return dg.SensorResult(skip_reason=f"@{model.champion_alias} is unchanged ({version})")
        versions = champion_versions(version, months).data_versions_by_partition
        scoring = runs_scoring(context.instance, deployment)  # read after the alias: a later run reads the new one
        if scoring:
            return dg.SensorResult(
                skip_reason=f"@{model.champion_alias} is {version}: reported once run {scoring[0]} (scoring) ends"
            )
        if not automation_saw_last_scoring(context.instance, deployment):
            return dg.SensorResult(
                skip_reason=f"@{model.champion_alias} is {version}: reported once automation has evaluated the last"
                " scoring run's predictions"
            )
        if context.cursor is None:
            newest = reported_versions(context.instance, champion_model, [max(versions)])
            if newest.get(max(versions)) == version:
                return dg.SensorResult(cursor=version, skip_reason=f"@{model.champion_alias} is {version}, as reported")
        context.log.info(f"@{model.champion_alias} is version {version} (was {context.cursor})")
        audit = model.promotion_audit(version)  # who moved it, from which version, when and why
        events = [
            dg.AssetObservation(
                asset_key=champion_model, partition=key, tags={"dagster/data_version": version}, metadata=audit
            )
            for key in versions
        ]
        return dg.SensorResult(asset_events=events, cursor=version)

    return [landing_sensor, champion_sensor]
