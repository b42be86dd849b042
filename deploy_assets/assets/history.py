"""What the Dagster instance remembers about earlier materializations."""

import dagster as dg

# Not exported by Dagster: what an evaluation needs to count as the check's status of its partition in the UI.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)


def latest_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str):
    """The newest materialization record of one partition, or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
    ).records
    return records[0] if records else None


def latest_metadata(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str) -> dict:
    """Raw metadata values of the newest materialization of one partition ({} if never materialized)."""
    record = latest_materialization(instance, asset_key, partition_key)
    if record is None:
        return {}
    return {name: value.value for name, value in record.asset_materialization.metadata.items()}


def check_target(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization a check evaluation of this partition is about: the newest one. Dagster shows a check's
    status per partition only for evaluations that point at the partition's current materialization."""
    record = latest_materialization(instance, asset_key, partition_key)
    if record is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
