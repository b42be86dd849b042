"""Sensor and schedule logic, evaluated with Dagster's test contexts against a real local landing folder."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import dagster as dg
import pytest

from deploy_assets.definitions import defs
from deploy_assets.schedules import monthly_scoring_schedule
from deploy_assets.sensors import champion_promotion_sensor, raw_trips_landing_sensor

SCORING = ["raw_trips", "trip_predictions", "prediction_table"]
EVERYTHING = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]


def evaluate_landing(project, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=project.instance,
        cursor=cursor,
        resources={"landing": project.landing, "registry": project.registry},
        definitions=defs,
    )
    return raw_trips_landing_sensor(context)


def selection(request: dg.RunRequest) -> list[str]:
    return sorted(key.to_user_string() for key in request.asset_selection)


def test_cursor_is_kept_and_nothing_is_requested_twice(project):
    project.land("2024-01-01", rows=2_000)
    first = evaluate_landing(project)
    assert [r.partition_key for r in first.run_requests] == ["2024-01-01"]
    assert first.cursor

    second = evaluate_landing(project, cursor=first.cursor)
    assert second.run_requests == [] and second.cursor == first.cursor


def test_foreign_names_and_months_outside_the_partitions_are_skipped(project):
    folder = project.root / "landing"
    folder.mkdir(parents=True)
    (folder / "green_tripdata_2024-01.parquet").write_bytes(b"x")
    (folder / "notes.txt").write_text("not a month")
    (folder / "yellow_tripdata_2019-01.parquet").write_bytes(b"x")  # before the first partition
    (folder / "yellow_tripdata_2099-01.parquet").write_bytes(b"x")  # not ended yet
    result = evaluate_landing(project)
    assert result.run_requests == []
    assert result.cursor  # the skipped files are behind the cursor now


def test_several_months_landing_at_once_get_one_request_each(project):
    for key in ("2024-01-01", "2024-02-01", "2024-03-01"):
        project.land(key, rows=2_000)
    result = evaluate_landing(project)
    assert sorted(r.partition_key for r in result.run_requests) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert len({r.run_key for r in result.run_requests}) == 3
    assert all(r.tags["trigger"] == "landing_sensor" for r in result.run_requests)


def test_same_bytes_keep_the_run_key_and_changed_bytes_get_a_new_one(project):
    path = project.land("2024-01-01", rows=2_000)
    first = evaluate_landing(project)
    later = time.time() + 5
    os.utime(path, (later, later))  # re-uploaded, identical bytes
    again = evaluate_landing(project, cursor=first.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]

    project.land("2024-01-01", rows=2_000, seed=7)  # changed bytes
    os.utime(path, (later + 5, later + 5))
    changed = evaluate_landing(project, cursor=again.cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_new_month_trains_a_model_only_when_its_training_month_is_ingested(project):
    project.land("2024-01-01", rows=5_000)
    project.land("2024-02-01", rows=5_000)
    [january, february] = sorted(evaluate_landing(project).run_requests, key=lambda r: r.partition_key)
    assert selection(january) == ["raw_trips"]
    assert selection(february) == ["raw_trips"]

    project.materialize(["raw_trips"], "2024-01-01")
    [february] = [r for r in evaluate_landing(project).run_requests if r.partition_key == "2024-02-01"]
    assert selection(february) == sorted(EVERYTHING)

    project.materialize(EVERYTHING, "2024-02-01")
    [february] = [r for r in evaluate_landing(project).run_requests if r.partition_key == "2024-02-01"]
    assert selection(february) == sorted(SCORING)


def test_promotion_requests_each_month_scored_by_another_version_once(project):
    for key in ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"):
        project.land(key, rows=5_000)
    project.materialize(["raw_trips"], "2024-01-01")
    for key in ("2024-02-01", "2024-03-01", "2024-04-01"):
        project.materialize(EVERYTHING, key)  # versions 1, 2, 3
    project.registry.promote("1")

    def evaluate(cursor):
        context = dg.build_sensor_context(
            instance=project.instance, cursor=cursor, resources={"registry": project.registry}, definitions=defs
        )
        return champion_promotion_sensor(context)

    result = evaluate(cursor="3")
    assert sorted(r.partition_key for r in result.run_requests) == ["2024-03-01", "2024-04-01"]
    assert all(r.tags["model_version"] == "1" for r in result.run_requests)
    assert all(r.run_config["ops"]["trip_predictions"]["config"]["model"] == "1" for r in result.run_requests)
    assert result.cursor == "1"
    assert evaluate(cursor=result.cursor).run_requests == []

    # Carry out one of the requests: that month is then up to date.
    request = result.run_requests[0]
    project.materialize(["trip_predictions", "prediction_table"], request.partition_key, run_config=request.run_config)
    assert set(project.predictions.read_month(2024, 3)["model_version"].to_pylist()) == {"1"}
    assert [r.partition_key for r in evaluate(cursor="3").run_requests] == ["2024-04-01"]


def test_schedule_scores_the_month_that_just_closed():
    schedule = defs.resolve_schedule_def(monthly_scoring_schedule.name)
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 6, 0, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-02-01"
    assert request.tags["trigger"] == "schedule"


@pytest.mark.parametrize("name", ["raw_trips_landing_sensor", "champion_promotion_sensor"])
def test_sensors_are_registered(name):
    assert defs.resolve_sensor_def(name).job_name == "month_end_to_end"
