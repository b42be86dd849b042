"""A deployment of the green taxi service: its files, in the TLC's green layout, land beside yellow ones and go
through the same monthly graph (ingest, model, predictions, table)."""

import pyarrow.parquet as pq
import pytest

from deploy_assets.assets.landing import sort_landing
from deploy_assets.assets.monthly import Deployment
from deploy_assets.core.datasets import GREEN, YELLOW
from deploy_assets.core.generate import generate_month, write_month
from deploy_assets.core.months import Month
from deploy_assets.partitions import Months
from deploy_assets.settings import Settings

TRAIN_KEY, SCORE_KEY = "2024-01-01", "2024-02-01"
ROWS = 5_000


def land(project, dataset, year, month, seed=0) -> str:
    table = generate_month(year, month, ROWS, seed=seed, dataset=dataset)
    return write_month(table, project.landing.uri, year, month, dataset=dataset)


def test_a_green_deployment_reads_only_green_file_names_from_the_landing_zone(tmp_path):
    landing = Deployment(Settings(name="green", data_uri=str(tmp_path), dataset="green")).landing
    assert landing.tlc_dataset is GREEN
    for dataset in (GREEN, YELLOW):
        write_month(generate_month(2024, 1, 100, dataset=dataset), landing.uri, 2024, 1, dataset=dataset)
    listing = sort_landing(landing.list_files(), Months.of(Settings()), landing.tlc_dataset)
    assert list(listing.months) == [TRAIN_KEY]
    assert listing.months[TRAIN_KEY].name == "green_tripdata_2024-01.parquet"
    assert listing.skipped == {
        "yellow_tripdata_2024-01.parquet": "not a TLC green file name (green_tripdata_YYYY-MM.parquet)"
    }


def test_a_dataset_that_is_no_tlc_service_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_DATASET='blue': expected one of yellow, green, fhv, fhvhv, or a declared dataset"):
        Settings(dataset="blue")
    with pytest.raises(ValueError, match=r"DEPLOY_ASSETS_MISSING_ZONES='fill': expected 'drop' or 'keep'"):
        Settings(dataset="fhv", missing_zones="fill")


def test_green_months_in_the_green_layout_are_ingested_trained_scored_and_published(project):
    project.use(name="green", dataset="green")
    green_file = land(project, GREEN, 2024, 1)
    assert "lpep_pickup_datetime" in pq.read_schema(green_file).names and "ehail_fee" in pq.read_schema(green_file).names
    land(project, GREEN, 2024, 2, seed=1)
    land(project, YELLOW, 2024, 2, seed=2)  # another service's month in the same zone is not read

    assert project.materialize(["raw_trips"], TRAIN_KEY).success
    february = project.materialize(["raw_trips", "duration_model", "trip_predictions", "prediction_table"], SCORE_KEY)

    assert february.success
    raw = project.metadata(february, "raw_trips")
    assert raw["source"].endswith("green_tripdata_2024-02.parquet")
    assert 0 < raw["dagster/row_count"] <= ROWS
    assert project.registry.version_for_partition(SCORE_KEY) is not None
    assert project.warehouse.count_rows(Month(2024, 2)) == project.metadata(february, "trip_predictions")["dagster/row_count"]
