"""What the Dagster instance remembers about earlier materializations."""

import dagster as dg


def latest_metadata(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition_key: str) -> dict:
    """Raw metadata values of the newest materialization of one partition ({} if never materialized)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
    ).records
    if not records:
        return {}
    return {name: value.value for name, value in records[0].asset_materialization.metadata.items()}
