"""The TLC datasets as data: each service's published layouts, generated exactly and read into the ride columns."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deploy_assets.core.datasets import (
    DATASETS,
    DISTANCE,
    DROPOFF_TIME,
    DROPOFF_ZONE,
    FEATURE_COLUMNS,
    FHV,
    GREEN,
    PICKUP_TIME,
    PICKUP_ZONE,
    YELLOW,
)
from deploy_assets.core.generate import generate_month, generate_month_batches, main, write_month
from deploy_assets.core.months import Month
from deploy_assets.core.schema import TLC_YELLOW_SCHEMA, InvalidTripData, iter_trips, read_trips

LAYOUTS = [(dataset, layout) for dataset in DATASETS.values() for layout in dataset.layouts]
LAYOUT_IDS = [f"{dataset.name}-{layout.label}" for dataset, layout in LAYOUTS]
ZONE_LAYOUTS = [(d, x) for d, x in LAYOUTS if PICKUP_ZONE in d.columns and "pickup_longitude" not in x.schema.names]
ROWS = 4_000


def landed(dataset, layout, month: Month = Month(2021, 3), rows: int = ROWS) -> tuple[io.BytesIO, str]:
    """A generated month written as Parquet, and the name it would land under."""
    sink = io.BytesIO()
    pq.write_table(generate_month(*month.pair, rows, dataset=dataset, layout=layout), sink)
    sink.seek(0)
    return sink, f"landing/{dataset.file_name(month)}"


@pytest.mark.parametrize(("dataset", "layout"), LAYOUTS, ids=LAYOUT_IDS)
def test_each_generated_layout_is_exactly_the_published_schema_once_written(dataset, layout):
    file, _ = landed(dataset, layout)
    assert pq.read_schema(file).equals(layout.schema)


def test_yellow_2024_is_the_schema_the_generator_always_wrote():
    assert YELLOW.newest.schema.equals(TLC_YELLOW_SCHEMA)
    assert generate_month(2024, 3, 500).equals(generate_month(2024, 3, 500, dataset=YELLOW, layout=YELLOW.newest))


def test_other_layouts_carry_the_same_rides_as_yellow():
    yellow = generate_month(2021, 3, ROWS, layout=YELLOW.newest)
    for dataset in (GREEN, FHV, DATASETS["fhvhv"]):
        other = generate_month(2021, 3, ROWS, dataset=dataset, layout=dataset.newest)
        pickup = other[dataset.columns[PICKUP_TIME].names[0]].cast(pa.timestamp("us"))
        assert pickup.equals(yellow[PICKUP_TIME]), dataset.name


@pytest.mark.parametrize(("dataset", "layout"), ZONE_LAYOUTS, ids=[f"{d.name}-{x.label}" for d, x in ZONE_LAYOUTS])
def test_reading_any_layout_gives_the_ride_columns_under_the_platform_names(dataset, layout):
    file, source = landed(dataset, layout)
    raw = pq.read_table(file)
    file.seek(0)
    rides = read_trips(file, source, dataset)
    assert rides.column_names == list(dataset.columns)
    assert all(pa.types.is_integer(rides[zone].type) for zone in (PICKUP_ZONE, DROPOFF_ZONE))
    times = dataset.columns[PICKUP_TIME].names[0]
    spelled = next(name for name in raw.column_names if name.casefold() == times.casefold())
    assert rides[PICKUP_TIME].equals(raw[spelled])
    assert rides.num_rows == ROWS


def test_fhv_has_zones_but_no_distance_and_reads_without_one():
    assert FHV.features == (PICKUP_ZONE, DROPOFF_ZONE) and DISTANCE not in FHV.columns
    assert YELLOW.features == GREEN.features == DATASETS["fhvhv"].features == FEATURE_COLUMNS
    file, source = landed(FHV, FHV.newest)
    assert read_trips(file, source, FHV).column_names == [PICKUP_TIME, DROPOFF_TIME, PICKUP_ZONE, DROPOFF_ZONE]


def test_fhvhv_trip_miles_are_the_distance():
    fhvhv = DATASETS["fhvhv"]
    file, source = landed(fhvhv, fhvhv.newest)
    raw = pq.read_table(file)
    file.seek(0)
    assert read_trips(file, source, fhvhv)[DISTANCE].equals(raw["trip_miles"])


def test_fhv_capitalisation_variants_of_every_year_are_the_same_columns():
    spelled = {layout.label: layout.schema.names for layout in FHV.layouts}
    assert "dropoff_datetime" in spelled["2019"] and "PULocationID" in spelled["2019"]
    assert "dropOff_datetime" in spelled["2021"] and "PUlocationID" in spelled["2021"]
    readings = [read_trips(*landed(FHV, layout), FHV) for layout in FHV.layouts]
    assert readings[0].schema == readings[1].schema
    assert readings[0][PICKUP_ZONE].equals(readings[1][PICKUP_ZONE])


def test_fhv_unknown_zones_stay_null_unless_asked_for_a_value_of_their_own():
    file, source = landed(FHV, FHV.layout("2021"))
    raw = pq.read_table(file)
    unknown = raw["PUlocationID"].null_count
    assert 0.10 * ROWS < unknown < 0.20 * ROWS  # about 15% of FHV rides have no pickup zone
    file.seek(0)
    kept = read_trips(file, source, FHV)
    assert kept.num_rows == ROWS and kept[PICKUP_ZONE].null_count == unknown
    file.seek(0)
    as_minus_one = read_trips(file, source, FHV, null_zone=-1)
    assert as_minus_one.num_rows == ROWS and as_minus_one[PICKUP_ZONE].null_count == 0
    assert pc.sum(pc.equal(as_minus_one[PICKUP_ZONE], -1)).as_py() == unknown
    known = pc.is_valid(raw["PUlocationID"])
    assert pc.filter(as_minus_one[PICKUP_ZONE], known).equals(pc.filter(raw["PUlocationID"], known).cast(pa.int64()))


def test_streamed_reading_normalises_every_batch_as_the_whole_read_does():
    file, source = landed(FHV, FHV.newest, rows=10_000)
    whole = read_trips(file, source, FHV, null_zone=-1)
    file.seek(0)
    batches = list(iter_trips(file, source, batch_rows=3_000, dataset=FHV, null_zone=-1))
    assert len(batches) == 4 and pa.Table.from_batches(batches).equals(whole)


@pytest.mark.parametrize("dataset", [YELLOW, GREEN], ids=["yellow", "green"])
def test_a_file_with_coordinates_instead_of_zones_is_refused_naming_both(dataset):
    month = Month(2015, 6)
    file, source = landed(dataset, dataset.layout_for(month), month)
    with pytest.raises(InvalidTripData) as refused:
        read_trips(file, source, dataset)
    assert str(refused.value) == (
        f"landing/{dataset.file_prefix}2015-06.parquet: has pickup_longitude/pickup_latitude, not"
        " PULocationID/DOLocationID: files before mid-2016 carry coordinates, not zones"
    )


def test_a_layout_is_chosen_by_month_only_for_writing():
    assert [YELLOW.layout_for(Month(*m)).label for m in ((2015, 6), (2016, 7), (2021, 3), (2024, 3))] == [
        "2015", "2021", "2021", "2024",
    ]
    with pytest.raises(ValueError, match="fhv: no layout known before 2019-01"):
        FHV.layout_for(Month(2018, 12))
    # Reading looks at the columns, not the name: a 2024-layout file named for 2015 reads.
    file, _ = landed(YELLOW, YELLOW.newest)
    assert read_trips(file, "yellow_tripdata_2015-06.parquet").num_rows == ROWS


def test_each_dataset_names_its_files_and_recognises_only_its_own():
    march = Month(2021, 3)
    for dataset in DATASETS.values():
        name = dataset.file_name(march)
        assert name == f"{dataset.name}_tripdata_2021-03.parquet" and dataset.month_of(name) == march
        others = [other for other in DATASETS.values() if other is not dataset]
        assert all(other.month_of(name) is None for other in others), name


def test_a_mistyped_ride_column_is_named_with_its_spelling_in_the_file():
    file, source = landed(FHV, FHV.layout("2019"))
    table = pq.read_table(file)
    zones = table.schema.get_field_index("PULocationID")
    table = table.set_column(zones, "PULocationID", table["PULocationID"].cast(pa.string()))
    sink = io.BytesIO()
    pq.write_table(table.drop_columns(["dropoff_datetime"]), sink)
    sink.seek(0)
    expected = "missing column 'dropOff_datetime'; column 'PULocationID' has type string"
    with pytest.raises(InvalidTripData, match=expected):
        read_trips(sink, source, FHV)


def test_the_generator_writes_a_months_published_layout_under_the_services_file_name(tmp_path):
    main(["--dataset", "fhv", "--layout", "published", "--year", "2020", "--month", "12", "--months", "2",
          "--rows", "300", "--out", str(tmp_path)])
    assert pq.read_schema(tmp_path / "fhv_tripdata_2020-12.parquet").equals(FHV.layout("2019").schema)
    assert pq.read_schema(tmp_path / "fhv_tripdata_2021-01.parquet").equals(FHV.layout("2021").schema)
    uri = write_month(generate_month(2021, 3, 10, dataset=GREEN), str(tmp_path), 2021, 3, dataset=GREEN)
    assert uri.endswith("green_tripdata_2021-03.parquet")


def test_a_month_generated_in_chunks_has_the_layout_of_the_whole():
    chunks = list(generate_month_batches(2021, 3, 2_500, dataset=FHV, layout=FHV.newest, chunk_rows=1_000))
    assert [chunk.num_rows for chunk in chunks] == [1_000, 1_000, 500]
    assert all(chunk.schema.equals(FHV.newest.schema) for chunk in chunks)
