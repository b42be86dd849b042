"""Month: the platform's one month value; the partitions' helpers delegate to it (fast: no files)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy_assets.core.months import Month

months = st.builds(Month, st.integers(1900, 2200), st.integers(1, 12))
steps = st.integers(-2400, 2400)


def test_previous_of_january_is_december_of_the_year_before():
    assert Month(2024, 1).previous == Month(2023, 12)


def test_next_of_december_is_january_of_the_year_after():
    assert Month(2023, 12).next == Month(2024, 1)


def test_a_month_spells_itself_as_key_label_pair_date_and_tlc_file_name():
    march = Month(2024, 3)
    assert march.key == "2024-03-01" and march.label == str(march) == "2024-03"
    assert march.pair == (2024, 3) and march.first_day == date(2024, 3, 1)
    assert march.file_name("yellow_tripdata_") == "yellow_tripdata_2024-03.parquet"
    assert march.file_name("fhv_tripdata_") == "fhv_tripdata_2024-03.parquet"


@given(months)
def test_every_spelling_reads_back_as_the_same_month(month):
    assert Month.from_key(month.key) == Month.parse(month.label) == Month.of(month.first_day) == month
    assert Month.from_file_name(month.file_name("green_tripdata_"), "green_tripdata_") == month
    assert Month(*month.pair) == Month.from_index(month.index) == month


@given(months, steps, steps)
def test_adding_months_is_associative_and_subtracting_undoes_it(month, a, b):
    assert (month + a) + b == month + (a + b)
    assert (month + a) - a == month
    assert (month + a) - month == a


@given(months, steps)
def test_months_order_as_their_keys_and_their_start_times(month, offset):
    other = month + offset
    assert (month < other) == (month.key < other.key) == (month.start < other.start) == (offset > 0)


@given(months)
def test_a_month_ends_where_the_next_begins_and_holds_28_to_31_days(month):
    assert month.end == month.next.start and month.start == datetime(month.year, month.month, 1)
    assert 28 <= (month.end - month.start).days <= 31


def test_february_of_a_leap_year_holds_29_days():
    assert (Month(2024, 2).end - Month(2024, 2).start).days == 29
    assert (Month(2023, 2).end - Month(2023, 2).start).days == 28


def test_a_user_may_name_a_month_by_any_date_or_datetime_in_it():
    for text in ("2021-03", "2021-03-01", "2021-03-17", "2021-03-01T00:00:00", " 2021-03-31 23:59 "):
        assert Month.parse(text) == Month(2021, 3)
    assert Month.of(datetime(2021, 3, 31, 23, 59)) == Month(2021, 3)


@pytest.mark.parametrize("text", ["2021-13", "2021-00-01", "2021-02-30", "21-03", "March 2021", "2021/03", ""])
def test_what_is_not_a_month_is_refused_with_a_value_error(text):
    with pytest.raises(ValueError):
        Month.parse(text)


@pytest.mark.parametrize("key", ["2024-03-02", "2024-03", "20240301", "2024-13-01"])
def test_a_partition_key_is_the_first_day_of_its_month_and_nothing_else(key):
    with pytest.raises(ValueError):
        Month.from_key(key)


def test_a_month_outside_1_to_12_does_not_exist():
    with pytest.raises(ValueError, match="no such month"):
        Month(2024, 13)


@pytest.mark.parametrize(
    "name",
    [
        "yellow_tripdata_2024-13.parquet",
        "yellow_tripdata_2024-03.parquet.tmp",
        "green_tripdata_2024-03.parquet",
        "yellow_tripdata_2024-3.parquet",
        "archive/yellow_tripdata_2024-03.parquet",
    ],
)
def test_a_file_name_of_another_service_shape_or_month_has_no_month(name):
    assert Month.from_file_name(name, "yellow_tripdata_") is None


def test_a_range_includes_both_ends_and_is_empty_when_reversed():
    assert Month(2023, 11).through(Month(2024, 2)) == [Month(2023, 11), Month(2023, 12), Month(2024, 1), Month(2024, 2)]
    assert Month(2024, 2).through(Month(2023, 11)) == []
    assert Month(2023, 12).span(3) == [Month(2023, 12), Month(2024, 1), Month(2024, 2)]


def test_the_training_window_is_the_k_months_before_oldest_first():
    assert Month(2024, 2).training_window(3, first=Month(2020, 1)) == [Month(2023, 11), Month(2023, 12), Month(2024, 1)]


def test_the_training_window_never_reaches_before_the_first_month():
    first = Month(2023, 12)
    assert Month(2024, 2).training_window(3, first) == [Month(2023, 12), Month(2024, 1)]
    assert first.training_window(3, first) == []


@given(months, st.integers(0, 36), steps)
def test_the_training_window_is_consecutive_before_the_month_and_not_before_the_first(month, k, offset):
    first = month + offset
    window = month.training_window(k, first)
    assert len(window) == max(0, min(k, month - first))
    assert all(first <= m < month for m in window)
    assert window == (window[0].span(len(window)) if window else [])
    assert not window or window[-1] == month.previous


def test_a_month_is_a_frozen_hashable_value():
    assert len({Month(2024, 3), Month.from_key("2024-03-01")}) == 1
    with pytest.raises(AttributeError):
        Month(2024, 3).month = 4  # type: ignore[misc]


def test_the_partition_helpers_speak_partition_keys_of_the_same_months():
    from deploy_assets import partitions
    from deploy_assets.settings import Settings

    months = partitions.Months.of(Settings(first_month="2023-01-01", training_months=2))
    first = Month.from_key(months.partitions_def.get_first_partition_key())
    assert first == Month(2023, 1)
    assert months.training_keys(first.key) == []
    assert months.training_keys(first.next.key) == [first.key]
    assert months.training_keys("2024-03-01") == ["2024-01-01", "2024-02-01"]
    assert partitions.previous_month("2024-01-01") == "2023-12-01"
    assert partitions.year_month("2024-03-01") == (2024, 3) and partitions.month_start("2024-03-01") == date(2024, 3, 1)


@pytest.mark.parametrize("window", [1, 3])
def test_the_model_assets_partition_mapping_selects_the_training_window(window):
    """The dependency edge Dagster draws (duration_model[M] ← trip_statistics) and the months the model is
    trained on are one rule: the mapping must select exactly `Months.training_keys`."""
    import dagster as dg

    from deploy_assets.deployment import standalone
    from deploy_assets.partitions import Months
    from deploy_assets.settings import Settings

    settings = Settings(first_month="2023-01-01", training_months=window)
    model = standalone(settings).resolve_assets_def(dg.AssetKey(["yellow", "duration_model"]))
    mapping = model.get_partition_mapping(dg.AssetKey(["yellow", "trip_statistics"]))
    months = Months.of(settings)
    partitions_def = months.partitions_def
    for month in months.first.span(14):
        downstream = partitions_def.subset_with_partition_keys([month.key])
        selected = mapping.get_upstream_mapped_partitions_result_for_partitions(downstream, partitions_def, partitions_def)
        assert sorted(selected.partitions_subset.get_partition_keys()) == months.training_keys(month.key)
