"""What keeps the graph right unattended: Dagster's declarative automation, and two sensors that only report.

Every materializable asset carries `converge()`: materialize a month when something it depends on changed (or it
went missing), once everything it needs exists and nothing it depends on is running. Unlike
`AutomationCondition.eager()` it looks at every month, not only the latest, so a historical load converges. Runs
come from Dagster's automation-condition sensor; two runs of one month never overlap (`~in_progress`), and a
month is requested again only after a new change upstream, so a failed run is not retried in a loop.

The sensors launch nothing. They tell Dagster what it cannot see by itself:
- `landing_sensor` lists the landing prefix and reports an observation of `landing_file[M]` whose data version is
  the object's ETag, for every month whose ETag changed. Dagster counts a new data version (not a new
  observation) as an update, so re-reporting is harmless.
- `champion_sensor` reads the registry's @champion and reports it on every month of `champion_model` when it moves.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime

import dagster as dg

from deploy_assets.assets.champion import champion_versions
from deploy_assets.assets.landing import sort_landing
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.storage import LandedFile, LandingZone
from deploy_assets.partitions import Months

LANDING_FILE = dg.AssetKey("landing_file")
CHAMPION_MODEL = dg.AssetKey("champion_model")


def converge(earlier_months: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """`eager()` over every month (not only the latest), reacting to new *data versions* only.

    Every asset's data version is its content (`assets/versions.py`), so an upstream month recomputed to the same
    content requests nothing. A change made by a run that also ran this asset does not request it again; that is
    judged per asset, not per month, by Dagster, so for `earlier_months` (deps of other months, e.g. the
    statistics duration_model[M] trains on) any change counts, and a month is not requested while one of those is
    requested in the same tick: it would run beside the run that rewrites what it reads.

    On its first evaluation (a new instance, or a changed condition) a month that is missing while everything it
    needs exists is requested too: `newly_missing` and updates only count after that first evaluation, so months
    observed before it (the landing sensor ticked first) would otherwise never run.
    """
    AC = dg.AutomationCondition
    same_run_change = (AC.data_version_changed() & ~AC.executed_with_root_target()) | AC.will_be_requested()
    updated = AC.any_deps_match(same_run_change)
    waits_for_earlier = None
    if earlier_months is not None:
        updated = updated.ignore(earlier_months) | AC.any_deps_match(AC.data_version_changed()).allow(earlier_months)
        waits_for_earlier = AC.any_deps_match(AC.will_be_requested()).allow(earlier_months)
    condition = (
        ((AC.newly_missing() | updated.with_label("any_deps_data_changed")).since_last_handled()
         | (AC.initial_evaluation() & AC.missing()))
        & ~AC.any_deps_missing()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    )
    if waits_for_earlier is not None:
        condition = condition & ~waits_for_earlier.with_label("an earlier month is requested in this tick")
    return condition.with_label("converge")


def converge_with_every_input(earlier_months: dg.AssetSelection) -> dg.AutomationCondition:
    """`converge()`, and every dependency maps to at least one existing month: the first month of the range has
    no month before it to train on, so its model is never requested."""
    has_every_input = dg.AutomationCondition.all_deps_match(
        ~dg.AutomationCondition.missing() | dg.AutomationCondition.will_be_requested()
    ).with_label("every input has a month")
    return converge(earlier_months) & has_every_input


# --- landing ---------------------------------------------------------------------------------------------------


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


def landing_observation(partition_key: str, landed: LandedFile) -> dg.AssetObservation:
    """What landed for a month, as Dagster records it: the object's ETag is landing_file's data version."""
    return dg.AssetObservation(
        asset_key=LANDING_FILE,
        partition=partition_key,
        tags={"dagster/data_version": landed.etag},
        metadata={"dagster/uri": landed.uri, "size": landed.size, "last_modified": landed.last_modified.isoformat()},
    )


# --- the sensors of a deployment ---------------------------------------------------------------------------------


def build_automation_sensors(months: Months, interval: int) -> list[dg.SensorDefinition]:
    """landing_sensor, champion_sensor and Dagster's automation sensor, each evaluated every `interval` s."""

    @dg.sensor(
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Lists the landing prefix and reports landing_file[M] (data version = ETag) for every month that changed.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
        previous = parse_landing_cursor(context.cursor)
        files = landing.list_files(known=previous)
        listing = sort_landing(files, months)
        new = {f.name for f in files if previous.get(f.name) is None or previous[f.name].etag != f.etag}
        for name, reason in listing.skipped.items():
            if name in new:  # one log line per stray object (and per change of it), not one per tick
                context.log.info(f"skipping landing object {name!r}: {reason}")
        changed = {key: landed for key, landed in listing.months.items() if landed.name in new}
        # A first look (or a lost cursor) asks the instance what was reported before, so nothing is reported twice.
        already = reported_versions(context.instance, LANDING_FILE, [k for k, f in changed.items() if f.name not in previous])
        events = []
        for key, landed in sorted(changed.items()):
            if already.get(key) == landed.etag:
                continue
            context.log.info(f"{landed.uri} → landing_file[{key}] version {landed.etag}")
            events.append(landing_observation(key, landed))
        return dg.SensorResult(
            asset_events=events,
            cursor=landing_cursor(files),
            skip_reason=None if events else f"no new or changed TLC files in {landing.uri}",
        )

    @dg.sensor(
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reports the registry's @champion on champion_model (every month) when the alias moves.",
    )
    def champion_sensor(context: dg.SensorEvaluationContext, registry: ModelRegistry) -> dg.SensorResult:
        version = registry.champion_version()
        if version is None or version == context.cursor:
            return dg.SensorResult(skip_reason=f"@{registry.champion_alias} is unchanged ({version})")
        versions = champion_versions(version, months).data_versions_by_partition
        if context.cursor is None:
            newest = reported_versions(context.instance, CHAMPION_MODEL, [max(versions)])
            if newest.get(max(versions)) == version:
                return dg.SensorResult(cursor=version, skip_reason=f"@{registry.champion_alias} is {version}, as reported")
        context.log.info(f"@{registry.champion_alias} is version {version} (was {context.cursor})")
        audit = registry.client.promotion_audit(version)  # who moved it, from which version, when and why
        events = [
            dg.AssetObservation(
                asset_key=CHAMPION_MODEL, partition=key, tags={"dagster/data_version": version}, metadata=audit
            )
            for key in versions
        ]
        return dg.SensorResult(asset_events=events, cursor=version)

    automation_sensor = dg.AutomationConditionSensorDefinition(
        "automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval,
        # Runs, not backfills: the backfill daemon would pick them up only on its own 30-second loop, and each run
        # holds one month anyway (assets/versions.py).
        emit_backfills=False,
        description="Dagster's declarative automation over every asset: what is out of date and can run, runs.",
    )

    return [landing_sensor, champion_sensor, automation_sensor]
