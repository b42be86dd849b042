"""landing_file: the TLC object of each month, an external asset observed (never materialized) by Dagster.

Its data version is the object's ETag, so a re-upload with other bytes is a new version (and raw_trips follows),
the same bytes uploaded again are not, and an A→B→A sequence is two changes. The landing sensor
(`sensors.py`) reports the observations; the asset's own observe function does the same listing, for the UI's
"Observe" button.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

from deploy_assets.assets.monthly import Deployment
from deploy_assets.core.datasets import Dataset
from deploy_assets.partitions import Months
from deploy_assets.resources.landing import LandedFile

LANDING_FILE = "landing_file"


@dataclass
class LandingListing:
    """A listing of the landing prefix sorted into TLC months and skipped objects (with the reason)."""

    months: dict[str, LandedFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def sort_landing(files: Iterable[LandedFile], months: Months, dataset: Dataset) -> LandingListing:
    """Which object is which month. Any name is accepted here: what is not exactly a top-level
    `<service>_tripdata_YYYY-MM.parquet` of `dataset` for a month inside the partitions is skipped with its reason."""
    listing = LandingListing()
    known = set(months.keys())
    for landed in files:  # oldest first: of two objects for one month, the newest wins
        if "/" in landed.name:
            listing.skipped[landed.name] = "in a nested folder (only top-level objects are TLC months)"
            continue
        month = dataset.month_of(landed.name)
        if month is None:
            listing.skipped[landed.name] = (
                f"not a TLC {dataset.name} file name ({dataset.file_prefix}YYYY-MM.parquet)"
            )
        elif month.key not in known:
            listing.skipped[landed.name] = f"month {month.key} is outside the partitions"
        else:
            listing.months[month.key] = landed
    return listing


def landing_observation(asset_key: dg.AssetKey, partition_key: str, landed: LandedFile) -> dg.AssetObservation:
    """What landed for a month, as Dagster records it: the object's ETag is landing_file's data version."""
    return dg.AssetObservation(
        asset_key=asset_key,
        partition=partition_key,
        tags={"dagster/data_version": landed.etag},
        metadata={"dagster/uri": landed.uri, "size": landed.size, "last_modified": landed.last_modified.isoformat()},
    )


def build_landing_file(deployment: Deployment) -> dg.AssetsDefinition:
    @dg.observable_source_asset(
        name=LANDING_FILE,
        **deployment.observed(),
        description="The month's TLC file in the landing zone (data version = its ETag), reported by the landing sensor.",
    )
    def landing_file() -> dg.DataVersionsByPartition:
        landing = deployment.landing
        listing = sort_landing(landing.list_files(), deployment.months, landing.tlc_dataset)
        return dg.DataVersionsByPartition({key: landed.etag for key, landed in listing.months.items()})

    return landing_file
