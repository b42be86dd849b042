"""Sensors that start runs by themselves: a new TLC file lands, or a new model becomes @champion."""

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from deploy_assets.assets.history import latest_metadata
from deploy_assets.assets.model import duration_model
from deploy_assets.assets.predictions import prediction_table, trip_predictions
from deploy_assets.assets.raw import raw_trips
from deploy_assets.jobs import month_end_to_end_job
from deploy_assets.partitions import monthly_partitions, partition_key_for_file, training_partition_keys
from deploy_assets.resources.mlflow_registry import ModelRegistry
from deploy_assets.resources.storage import LandedFile, LandingZone

SENSOR_INTERVAL_SECONDS = int(os.getenv("DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS", "30"))
CURSOR_OVERLAP = timedelta(seconds=2)
# How many of the most recent scored months a promotion may re-score.
MAX_RESCORED_MONTHS = int(os.getenv("DEPLOY_ASSETS_RESCORE_MAX_MONTHS", "24"))


@dataclass(frozen=True)
class LandingCursor:
    """Where the landing sensor is: the newest last-modified time seen and the files seen just before it.

    S3 timestamps have one-second resolution, so each tick re-lists from a little before the newest time (an
    object written in the same second as the last one seen is not missed) and drops the files already seen.
    """

    newest: datetime | None = None
    recent: frozenset[str] = frozenset()

    @staticmethod
    def fingerprint(landed: LandedFile) -> str:
        return f"{landed.name}:{landed.etag}:{landed.last_modified.isoformat()}"

    @classmethod
    def parse(cls, raw: str | None) -> "LandingCursor":
        if not raw:
            return cls()
        state = json.loads(raw)
        return cls(datetime.fromisoformat(state["newest"]), frozenset(state["recent"]))

    def serialize(self) -> str | None:
        if self.newest is None:
            return None
        return json.dumps({"newest": self.newest.isoformat(), "recent": sorted(self.recent)})

    def list_since(self) -> datetime | None:
        return self.newest - CURSOR_OVERLAP if self.newest else None

    def is_new(self, landed: LandedFile) -> bool:
        return self.fingerprint(landed) not in self.recent

    def advance(self, new_files: list[LandedFile]) -> "LandingCursor":
        newest = max([f.last_modified for f in new_files] + ([self.newest] if self.newest else []), default=None)
        if newest is None:
            return self
        window_start = newest - CURSOR_OVERLAP
        # A fingerprint is "name:etag:timestamp"; names and ETags hold no colon, the ISO timestamp does.
        still_recent = {e for e in self.recent if datetime.fromisoformat(e.split(":", 2)[2]) >= window_start}
        recent = still_recent | {self.fingerprint(f) for f in new_files if f.last_modified >= window_start}
        return LandingCursor(newest, frozenset(recent))


def assets_to_refresh(
    instance: dg.DagsterInstance, registry: ModelRegistry, partition_key: str
) -> tuple[list[dg.AssetKey], str]:
    """What a newly landed month needs, and why.

    Always ingest and score it; train its model too when none is registered and the months it trains on are
    ingested. When they are not, only ingest: the model would have nothing to learn from.
    """
    scoring = [raw_trips.key, trip_predictions.key, prediction_table.key]
    if registry.version_for_partition(partition_key) is not None:
        return scoring, "model already registered"
    ingested = instance.get_materialized_partitions(raw_trips.key)
    missing = [key for key in training_partition_keys(partition_key) if key not in ingested]
    if missing:
        return [raw_trips.key], f"ingest only: training months {missing} are not ingested yet"
    return [raw_trips.key, duration_model.key, trip_predictions.key, prediction_table.key], "new model"


@dg.sensor(
    job=month_end_to_end_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches a month's run when its yellow_tripdata_YYYY-MM.parquet lands (or changes).",
)
def raw_trips_landing_sensor(
    context: dg.SensorEvaluationContext, landing: LandingZone, registry: ModelRegistry
) -> dg.SensorResult:
    """Cursor: the newest last-modified time seen, plus the files seen within CURSOR_OVERLAP of it. Run key:
    file name + ETag, so the same bytes uploaded again launch nothing while changed bytes launch one new run."""
    cursor = LandingCursor.parse(context.cursor)
    files = [f for f in landing.list_files(cursor.list_since()) if cursor.is_new(f)]
    known_partitions = set(monthly_partitions.get_partition_keys())
    requests = []
    for landed in files:
        partition_key = partition_key_for_file(landed.name)
        if partition_key is None:
            context.log.info(f"skipping {landed.uri}: not a TLC yellow file name (yellow_tripdata_YYYY-MM.parquet)")
            continue
        if partition_key not in known_partitions:
            context.log.info(f"skipping {landed.uri}: month {partition_key} is outside the partitions")
            continue
        selection, why = assets_to_refresh(context.instance, registry, partition_key)
        context.log.info(f"{landed.uri} → {partition_key}: {why}")
        requests.append(
            dg.RunRequest(
                run_key=f"{landed.name}:{landed.etag}",
                partition_key=partition_key,
                asset_selection=selection,
                tags={"trigger": "landing_sensor", "landing/uri": landed.uri, "landing/etag": landed.etag},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        cursor=cursor.advance(files).serialize(),
        skip_reason=None if requests else f"no new TLC files in {landing.uri}",
    )


def months_scored_by_other_versions(instance: dg.DagsterInstance, version: str, limit: int) -> list[str]:
    """The most recent `limit` scored months whose latest predictions came from a version other than `version`."""
    scored = sorted(instance.get_materialized_partitions(trip_predictions.key), reverse=True)[:limit]
    stale = []
    for partition_key in scored:
        scored_by = latest_metadata(instance, trip_predictions.key, partition_key).get("model_version")
        if scored_by is None or str(scored_by) != version:
            stale.append(partition_key)
    return sorted(stale)


@dg.sensor(
    job=month_end_to_end_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "When @champion moves, re-scores the months whose predictions came from another version. Off by default:"
        " the default scoring policy scores month M with duration_model[M]; turn this on to keep published"
        " predictions in line with the model the online services serve."
    ),
)
def champion_promotion_sensor(context: dg.SensorEvaluationContext, registry: ModelRegistry) -> dg.SensorResult:
    champion = registry.champion_version()
    if champion is None or champion == context.cursor:
        return dg.SensorResult(skip_reason=f"@{registry.champion_alias} is unchanged ({champion})")
    stale = months_scored_by_other_versions(context.instance, champion, MAX_RESCORED_MONTHS)
    context.log.info(f"@{registry.champion_alias} moved to version {champion}: re-scoring {stale}")
    requests = [
        dg.RunRequest(
            run_key=f"champion-{champion}:{partition_key}",
            partition_key=partition_key,
            asset_selection=[trip_predictions.key, prediction_table.key],
            run_config={"ops": {"trip_predictions": {"config": {"model": champion}}}},
            tags={"trigger": "champion_promotion", "model_version": champion},
        )
        for partition_key in stale
    ]
    return dg.SensorResult(run_requests=requests, cursor=champion)
