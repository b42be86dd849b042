"""The two reporting sensors, Dagster's automation conditions and the schedule, evaluated in process.

- `<name>_landing_sensor` lists a real local landing folder and reports `<name>/landing_file[M]` observations (data
  version = the object's MD5, standing in for the S3 ETag); it launches nothing.
- `<name>_champion_sensor` reads a real (sqlite) MLflow registry and reports `<name>/champion_model` on every month
  when the deployment's @champion moves.
- The automation conditions are evaluated with `dg.evaluate_automation_conditions` over the deployment's
  Definitions and a test instance holding what the sensors reported and what runs materialized.

What the daemon does with a sensor's `asset_events` (store them in the instance) is done here by `record()`.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.observe import observe  # dg.observe is not exported

from deploy_assets.assets.champion import CHAMPION_MODEL
from deploy_assets.assets.landing import LANDING_FILE
from deploy_assets.core.features import clean_trips
from deploy_assets.core.generate import generate_month
from deploy_assets.core.model import train_duration_model
from deploy_assets.core.months import Month
from deploy_assets.core.schema import tlc_file_name
from deploy_assets.definitions import defs
from deploy_assets.partitions import Months, year_month
from deploy_assets.settings import Settings
from deploy_assets_tests.conftest import starting_state

ROWS = 2_000
MONTHS = Months.of(Settings())
EVERY_MONTH = MONTHS.keys()
SHIPPED = ("fhv", "green", "yellow")  # the deployments under defs/
YELLOW_LANDING, YELLOW_CHAMPION = dg.AssetKey(["yellow", LANDING_FILE]), dg.AssetKey(["yellow", CHAMPION_MODEL])
JAN, FEB, MAR = "2024-01-01", "2024-02-01", "2024-03-01"
NESTED = "in a nested folder (only top-level objects are TLC months)"
NOT_TLC = "not a TLC yellow file name (yellow_tripdata_YYYY-MM.parquet)"
# Names an operator or an uploader can leave in the landing prefix, and why each is skipped.
ODD_NAMES = {
    "notes 2024-01-01T00:00:00.txt": NOT_TLC,  # spaces and colons (the old cursor split on ':')
    "a:b:c.parquet": NOT_TLC,
    "yellow_tripdata_2024-07.parquet.tmp": NOT_TLC,  # an upload in progress
    ".yellow_tripdata_2024-08.parquet.uploading": NOT_TLC,
    "données_2024–05.parquet": NOT_TLC,  # unicode, an en dash
    "🚕 yellow_tripdata_2024-04.parquet": NOT_TLC,
    "green_tripdata_2024-01.parquet": NOT_TLC,
    "yellow_tripdata_2024-13.parquet": NOT_TLC,  # no such month
    "archive/yellow_tripdata_2024-03.parquet": NESTED,
    "deep/er/yellow_tripdata_2024-02.parquet": NESTED,
    "yellow_tripdata_1999-01.parquet": "month 1999-01-01 is outside the partitions",
    "yellow_tripdata_2099-01.parquet": "month 2099-01-01 is outside the partitions",
}


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def skipped(self) -> dict[str, str]:
        """{object name: reason} of the 'skipping' lines; fails on a name logged twice."""
        found: dict[str, str] = {}
        for message in self.messages:
            if message.startswith("skipping landing object "):
                rest = message.removeprefix("skipping landing object ")
                name, _, reason = rest.rpartition(": ")
                name = ast.literal_eval(name)  # the sensor logs the name with !r
                assert name not in found, f"{name!r} logged twice: {self.messages}"
                found[name] = reason
        return found


def evaluate_landing(project, cursor: str | None = None) -> tuple[dg.SensorResult, Records]:
    context = dg.build_sensor_context(instance=project.instance, cursor=cursor)
    records = Records()
    context.log.addHandler(records)
    result = project.sensor("landing_sensor")(context)
    assert not result.run_requests  # the sensor only reports
    return result, records


def record(project, result: dg.SensorResult) -> None:
    """What the daemon does with the sensor's events: store them in the instance."""
    for event in result.asset_events:
        project.instance.report_runless_asset_event(event)


def observed(result: dg.SensorResult) -> dict[str, str]:
    """{partition: data version} of the observations a tick reported."""
    events = result.asset_events
    assert all(isinstance(e, dg.AssetObservation) and e.asset_key == YELLOW_LANDING for e in events)
    assert len({e.partition for e in events}) == len(events), "a month reported twice in one tick"
    return {e.partition: e.tags["dagster/data_version"] for e in events}


def stored_version(project, key: str, asset: dg.AssetKey = YELLOW_LANDING) -> str | None:
    record_ = project.instance.get_latest_data_version_record(asset, is_source=True, partition_key=key)
    return record_.asset_observation.data_version if record_ else None


def put(folder: Path, name: str, data: bytes, mtime: float | None = None) -> Path:
    """Write an object (parents created) and give it a distinct modification time."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def month_bytes(key: str, seed: int = 0) -> bytes:
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(generate_month(*year_month(key), ROWS, seed=seed), sink)
    return sink.getvalue()


def md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# --- landing_sensor ------------------------------------------------------------------------------------------------


def test_odd_names_are_skipped_with_one_log_line_each_and_wedge_nothing(project):
    folder = Path(project.landing.uri)
    for name in ODD_NAMES:
        put(folder, name, b"not a TLC month")
    january, february = month_bytes(JAN), month_bytes(FEB, seed=1)
    put(folder, tlc_file_name(2024, 1), january)
    put(folder, tlc_file_name(2024, 2), february)

    first, logs = evaluate_landing(project)
    assert observed(first) == {JAN: md5(january), FEB: md5(february)}
    assert logs.skipped() == {name: reason for name, reason in ODD_NAMES.items()}
    observation = next(e for e in first.asset_events if e.partition == JAN)
    assert observation.metadata["dagster/uri"].value == str(folder / tlc_file_name(2024, 1))
    assert observation.metadata["size"].value == len(january)
    record(project, first)

    # The next tick: nothing new, nothing logged again (the odd objects are in the cursor too).
    second, logs = evaluate_landing(project, first.cursor)
    assert second.asset_events == [] and logs.skipped() == {}
    assert second.skip_reason
    assert json.loads(second.cursor)["objects"].keys() == {*ODD_NAMES, tlc_file_name(2024, 1), tlc_file_name(2024, 2)}

    # A stray object that changes is logged once more; a month landing beside it is reported.
    put(folder, "a:b:c.parquet", b"other bytes", mtime=time.time() + 10)
    march = month_bytes(MAR, seed=2)
    put(folder, tlc_file_name(2024, 3), march)
    third, logs = evaluate_landing(project, second.cursor)
    assert observed(third) == {MAR: md5(march)}
    assert logs.skipped() == {"a:b:c.parquet": NOT_TLC}


def test_cursor_is_json_and_an_unreadable_cursor_wedges_nothing(project):
    folder = Path(project.landing.uri)
    january = month_bytes(JAN)
    put(folder, tlc_file_name(2024, 1), january, mtime=1_700_000_000)
    first, _ = evaluate_landing(project)
    state = json.loads(first.cursor)
    assert state["version"] == 1
    entry = state["objects"][tlc_file_name(2024, 1)]
    assert entry["etag"] == md5(january) and entry["size"] == len(january)
    assert datetime.fromisoformat(entry["last_modified"]) == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    record(project, first)

    february = month_bytes(FEB, seed=1)
    put(folder, tlc_file_name(2024, 2), february)
    unreadable = [
        "not json at all",
        f"{tlc_file_name(2024, 1)}:{md5(january)}:2024-01-01T00:00:00",  # the old name:etag:time format
        "[]",
        "null",
        '{"objects": 5}',
        '{"objects": {"yellow_tripdata_2024-01.parquet": {"etag": "x"}}}',
        '{"objects": {"yellow_tripdata_2024-01.parquet": {"uri": "u", "name": "n", "etag": "e", "last_modified": "yesterday"}}}',
    ]
    for cursor in unreadable:
        result, _ = evaluate_landing(project, cursor)
        # Read as "no cursor": what was reported before is not reported again; what is new is.
        assert observed(result) == {FEB: md5(february)}, cursor
        assert json.loads(result.cursor)["objects"].keys() == {tlc_file_name(2024, 1), tlc_file_name(2024, 2)}


def test_same_bytes_report_nothing_and_changed_bytes_one_observation(project):
    folder = Path(project.landing.uri)
    original = month_bytes(JAN)
    put(folder, tlc_file_name(2024, 1), original, mtime=1_700_000_000)
    first, _ = evaluate_landing(project)
    record(project, first)
    assert observed(first) == {JAN: md5(original)}

    # Re-uploaded with identical bytes (a new modification time): same ETag, nothing to report.
    put(folder, tlc_file_name(2024, 1), original, mtime=1_700_000_100)
    same, _ = evaluate_landing(project, first.cursor)
    assert same.asset_events == []

    # Changed bytes: exactly one observation, with the new version.
    changed_bytes = month_bytes(JAN, seed=7)
    put(folder, tlc_file_name(2024, 1), changed_bytes, mtime=1_700_000_200)
    changed, _ = evaluate_landing(project, same.cursor)
    assert observed(changed) == {JAN: md5(changed_bytes)}
    record(project, changed)
    assert stored_version(project, JAN) == md5(changed_bytes)
    assert evaluate_landing(project, changed.cursor)[0].asset_events == []


def test_a_b_a_is_reported_each_time(project):
    """A month replaced by other bytes and then by the first bytes again is three changes, not one."""
    folder = Path(project.landing.uri)
    a, b = month_bytes(JAN), month_bytes(JAN, seed=3)
    reported, cursor = [], None
    for step, data in enumerate((a, b, a)):
        put(folder, tlc_file_name(2024, 1), data, mtime=1_700_000_000 + 100 * step)
        result, _ = evaluate_landing(project, cursor)
        record(project, result)
        reported.append(observed(result))
        cursor = result.cursor
    assert reported == [{JAN: md5(a)}, {JAN: md5(b)}, {JAN: md5(a)}]
    history = project.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=YELLOW_LANDING, asset_partitions=[JAN]), limit=10
    ).records
    assert [r.asset_observation.data_version for r in reversed(history)] == [md5(a), md5(b), md5(a)]


def test_nested_prefixes(project, tmp_path):
    """The landing zone can be a nested prefix; objects in folders below it are skipped; siblings of it are not
    listed at all."""
    root = tmp_path / "zone"
    project.use(landing_uri=str(root / "tlc" / "yellow"))
    january = month_bytes(JAN)
    put(root / "tlc" / "yellow", tlc_file_name(2024, 1), january)
    put(root / "tlc" / "yellow", f"2024/{tlc_file_name(2024, 2)}", month_bytes(FEB))
    put(root / "tlc", tlc_file_name(2024, 3), month_bytes(MAR))  # beside the prefix, not under it
    put(root / "tlc" / "yellow-old", tlc_file_name(2024, 4), month_bytes("2024-04-01"))  # a sibling prefix

    result, logs = evaluate_landing(project)
    assert observed(result) == {JAN: md5(january)}
    assert logs.skipped() == {f"2024/{tlc_file_name(2024, 2)}": NESTED}
    assert json.loads(result.cursor)["objects"].keys() == {tlc_file_name(2024, 1), f"2024/{tlc_file_name(2024, 2)}"}


def test_a_lost_cursor_reports_again_nothing_already_reported(project):
    folder = Path(project.landing.uri)
    january, february = month_bytes(JAN), month_bytes(FEB, seed=1)
    put(folder, tlc_file_name(2024, 1), january, mtime=1_700_000_000)
    put(folder, tlc_file_name(2024, 2), february, mtime=1_700_000_000)
    first, _ = evaluate_landing(project)
    record(project, first)

    # Cursor lost (reset by hand, a new sensor name, ...): nothing already reported is reported again.
    again, _ = evaluate_landing(project, None)
    assert again.asset_events == []
    assert json.loads(again.cursor) == json.loads(first.cursor)

    # ... but a month that changed while the cursor was lost is.
    changed = month_bytes(FEB, seed=9)
    put(folder, tlc_file_name(2024, 2), changed, mtime=1_700_000_500)
    result, _ = evaluate_landing(project, None)
    assert observed(result) == {FEB: md5(changed)}
    before = len(project.instance.fetch_observations(YELLOW_LANDING, limit=100).records)
    record(project, result)
    assert len(project.instance.fetch_observations(YELLOW_LANDING, limit=100).records) == before + 1


def test_an_empty_or_missing_landing_zone_reports_nothing(project):
    result, logs = evaluate_landing(project)  # the folder does not exist yet
    assert result.asset_events == [] and logs.skipped() == {}
    assert json.loads(result.cursor)["objects"] == {}


def test_landing_file_observe_function_lists_the_same_months(project):
    """The UI's "Observe" button on landing_file: the same listing, recorded as data versions by partition."""
    folder = Path(project.landing.uri)
    put(folder, "notes 2024-01-01T00:00:00.txt", b"x")
    put(folder, f"archive/{tlc_file_name(2024, 2)}", month_bytes(FEB))
    january = month_bytes(JAN)
    put(folder, tlc_file_name(2024, 1), january)
    landing_file = project.asset_def(LANDING_FILE)
    assert observe([landing_file], instance=project.instance).success
    observations = project.instance.fetch_observations(YELLOW_LANDING, limit=10).records
    assert {r.partition_key: r.asset_observation.data_version for r in observations} == {JAN: md5(january)}


# --- champion_sensor -----------------------------------------------------------------------------------------------


def register_two_versions(project) -> tuple[str, str]:
    """Versions registered for February and March (trained on small generated months)."""
    versions = []
    for key in (FEB, MAR):
        scored = Month.from_key(key)
        trained_on = scored.previous
        clean = clean_trips(generate_month(*trained_on.pair, ROWS, seed=scored.month), *trained_on.pair).table
        trained = train_duration_model([clean], holdout_fraction=0.0)
        versions.append(project.registry.log_and_register(trained, key, [trained_on.key], {}).version)
    return versions[0], versions[1]


two_versions_state, project, two_versions = starting_state("two_versions", register_two_versions)


def evaluate_champion(project, cursor: str | None) -> dg.SensorResult:
    registry = project.resources["registry"]
    context = dg.build_sensor_context(instance=project.instance, cursor=cursor, resources={"registry": registry})
    result = project.sensor("champion_sensor")(context)
    assert not result.run_requests
    return result


def champion_observed(result: dg.SensorResult) -> dict[str, str]:
    assert all(e.asset_key == YELLOW_CHAMPION for e in result.asset_events)
    return {e.partition: e.tags["dagster/data_version"] for e in result.asset_events}


def test_champion_sensor_reports_once_per_move_and_a_roll_back_again(project, two_versions):
    february, march = two_versions
    every_month = set(EVERY_MONTH)

    none = evaluate_champion(project, None)  # no @champion yet
    assert none.asset_events == [] and none.cursor is None

    project.registry.promote(february)
    first = evaluate_champion(project, None)
    assert champion_observed(first) == {key: february for key in every_month}
    assert first.cursor == february
    record(project, first)
    assert evaluate_champion(project, first.cursor).asset_events == []  # unchanged: nothing

    project.registry.promote(march)
    moved = evaluate_champion(project, first.cursor)
    assert champion_observed(moved) == {key: march for key in every_month}
    record(project, moved)
    assert evaluate_champion(project, moved.cursor).asset_events == []

    # A deliberate roll-back is one more change, reported again (not mistaken for the first report).
    project.registry.promote(february, allow_backwards=True)
    back = evaluate_champion(project, moved.cursor)
    assert champion_observed(back) == {key: february for key in every_month}
    assert back.cursor == february
    record(project, back)
    assert stored_version(project, MAR, YELLOW_CHAMPION) == february

    # A lost cursor: what the instance already has is not reported again.
    lost = evaluate_champion(project, None)
    assert lost.asset_events == [] and lost.cursor == february


@pytest.mark.parametrize(
    "scoring_run",
    [
        {"job_name": "__ASSET_JOB", "asset_selection": frozenset({dg.AssetKey(["yellow", "trip_predictions"])})},
        {"job_name": "yellow_month_end_to_end", "asset_selection": None},
    ],
    ids=["asset-selection", "month-job"],
)
def test_champion_sensor_waits_for_the_scoring_runs_in_progress(project, two_versions, scoring_run):
    """A move reported while a run scores months with the old @champion would be absorbed by that run's
    materialization: it is reported once the run ends, and a run of other assets does not hold it."""
    february, march = two_versions
    project.registry.promote(february)
    first = evaluate_champion(project, None)
    record(project, first)
    other = dg.DagsterRun(
        job_name="__ASSET_JOB", asset_selection=frozenset({dg.AssetKey(["yellow", "raw_trips"])}),
        status=dg.DagsterRunStatus.STARTED,
    )
    scoring = dg.DagsterRun(**scoring_run, status=dg.DagsterRunStatus.STARTED)
    project.instance.add_run(other)
    project.instance.add_run(scoring)

    project.registry.promote(march)
    waiting = evaluate_champion(project, first.cursor)
    assert waiting.asset_events == [] and waiting.cursor is None
    assert scoring.run_id in waiting.skip_reason.skip_message

    project.instance.report_run_failed(scoring)
    moved = evaluate_champion(project, first.cursor)
    assert champion_observed(moved) == {key: march for key in EVERY_MONTH}
    assert moved.cursor == march


def test_champion_model_observe_function_reports_the_alias(project, two_versions):
    february, _ = two_versions
    resources = {"registry": project.resources["registry"]}
    champion_model = project.asset_def(CHAMPION_MODEL)
    assert observe([champion_model], instance=project.instance, resources=resources).success
    assert project.instance.fetch_observations(YELLOW_CHAMPION, limit=1).records == []  # no @champion yet
    project.registry.promote(february)
    assert observe([champion_model], instance=project.instance, resources=resources).success
    observations = project.instance.fetch_observations(YELLOW_CHAMPION, limit=1000).records
    assert {r.partition_key: r.asset_observation.data_version for r in observations} == {
        key: february for key in EVERY_MONTH
    }


# --- automation conditions -----------------------------------------------------------------------------------------

MATERIALIZABLE = ["raw_trips", "trip_statistics", "duration_model", "model_promotion", "trip_predictions", "prediction_table"]


class Automation:
    """Successive evaluations of the automation conditions, each from the previous one's cursor (as the
    automation sensor does)."""

    def __init__(self, project):
        self.project = project
        self.cursor = None

    def evaluate(self) -> dict[str, list[str]]:
        project = self.project
        result = dg.evaluate_automation_conditions(defs=project.defs, instance=project.instance, cursor=self.cursor)
        self.cursor = result.cursor
        requested = {name: sorted(result.get_requested_partitions(project.key(name))) for name in MATERIALIZABLE}
        return {name: keys for name, keys in requested.items() if keys}


def land_and_report(project, keys: list[str], cursor: str | None = None, seed: int = 0) -> str:
    for key in keys:
        project.land(key, rows=ROWS, seed=seed)
    result, _ = evaluate_landing(project, cursor)
    assert set(observed(result)) == set(keys)
    record(project, result)
    return result.cursor


def every_step_of(keys: list[str]) -> dict[str, list[str]]:
    return {name: keys for name in ("duration_model", "model_promotion", "trip_predictions", "prediction_table")}


def test_three_months_observed_at_once_are_ingested_then_modelled_for_all_but_the_first(project):
    automation = Automation(project)
    assert automation.evaluate() == {}  # nothing landed: nothing to do
    land_and_report(project, [JAN, FEB, MAR])

    # Each month's ingest runs at once; a model waits until the month it trains on is stored (its run would
    # otherwise run beside the one writing it).
    assert automation.evaluate() == {"raw_trips": [JAN, FEB, MAR], "trip_statistics": [JAN, FEB, MAR]}
    # Requested once: the next evaluation, with nothing new, asks for nothing (no loop over unfinished months).
    assert automation.evaluate() == {}

    for key in (JAN, FEB, MAR):  # what the requested runs do (in process here)
        project.materialize(["raw_trips"], key)
    # January's model would train on December 2023, which never landed: it is not requested.
    assert automation.evaluate() == every_step_of([FEB, MAR])
    assert automation.evaluate() == {}


def test_months_observed_before_the_first_evaluation_are_requested_too(project):
    """A new instance whose landing sensor ticks before the automation sensor's first evaluation."""
    land_and_report(project, [JAN, FEB])
    automation = Automation(project)
    assert automation.evaluate() == {"raw_trips": [JAN, FEB], "trip_statistics": [JAN, FEB]}
    assert automation.evaluate() == {}
    for key in (JAN, FEB):
        project.materialize(["raw_trips"], key)
    assert automation.evaluate() == every_step_of([FEB])
    assert automation.evaluate() == {}


def test_converged_months_stay_put_and_a_changed_month_refreshes_what_depends_on_it(project):
    automation = Automation(project)
    automation.evaluate()
    cursor = land_and_report(project, [JAN, FEB, MAR])
    automation.evaluate()
    # What the requested runs do (in process here).
    project.materialize(["raw_trips"], JAN)
    for key in (FEB, MAR):
        project.materialize(["raw_trips", "duration_model", "model_promotion", "trip_predictions", "prediction_table"], key)
    assert automation.evaluate() == {}

    # February re-uploaded with its own bytes: no observation, nothing to do.
    os.utime(project.landing.month_path(2024, 2).path, (time.time() + 60, time.time() + 60))
    same, _ = evaluate_landing(project, cursor)
    assert same.asset_events == []
    assert automation.evaluate() == {}

    # February re-uploaded with other bytes: its ingest and its model (tested on it) and what depends on them, in
    # one run; January stays put.
    project.land(FEB, rows=ROWS, seed=5)
    changed, _ = evaluate_landing(project, same.cursor)
    assert set(observed(changed)) == {FEB}
    record(project, changed)
    assert automation.evaluate() == {"raw_trips": [FEB], "trip_statistics": [FEB], **every_step_of([FEB])}
    assert automation.evaluate() == {}  # requested once, while its run has not happened

    # Once that run stored February, March's model (trained on it) and what depends on it follow.
    everything = ["raw_trips", "duration_model", "model_promotion", "trip_predictions", "prediction_table"]
    project.materialize(everything, FEB)
    assert automation.evaluate() == every_step_of([MAR])
    project.materialize(everything[1:], MAR)
    assert automation.evaluate() == {}

    # February ingested again from the same bytes (by hand): the same content, so nothing downstream moves.
    project.materialize(["raw_trips"], FEB)
    assert automation.evaluate() == {}


def test_every_materializable_asset_of_every_deployment_converges_and_the_sensors_only_report():
    graph = defs.resolve_asset_graph()
    for deployment, name in ((d, n) for d in ("yellow", "green") for n in MATERIALIZABLE):
        condition = graph.get(dg.AssetKey([deployment, name])).automation_condition
        if name == "duration_model":  # converge, and never for the first month (nothing to train on)
            labels = [operand.get_label() for operand in condition.operands]
            assert labels == ["converge", "every input has a month"], labels
        else:
            assert condition.get_label() == "converge", name
        # eager() without its latest-time-window clause: every month converges, not only the newest.
        assert "InLatestTimeWindow" not in repr(condition), name
    reporting = [f"{d}_{s}" for d in SHIPPED for s in ("landing_sensor", "champion_sensor", "freshness_alert_sensor")]
    for name in ("failure_alert_sensor", *reporting):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        assert not sensor.targets  # it launches nothing
        # Just under the interval: the daemon's 5-second loop then ticks it every interval, not every interval + 5.
        assert sensor.minimum_interval_seconds == Settings().sensor_interval_seconds - 1
    for deployment in SHIPPED:
        automation_sensor = defs.resolve_sensor_def(f"{deployment}_automation_sensor")
        assert isinstance(automation_sensor, dg.AutomationConditionSensorDefinition)
        assert automation_sensor.minimum_interval_seconds == Settings().sensor_interval_seconds - 1
        assert automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
        # Its own cursor over its own deployment's assets only.
        targeted = automation_sensor.asset_selection.resolve(defs.resolve_asset_graph())
        assert targeted and {key.path[0] for key in targeted} == {deployment}
    sensor_names = {sensor.name for sensor in defs.sensors}
    assert sensor_names == {"failure_alert_sensor", *reporting, *(f"{d}_automation_sensor" for d in SHIPPED)}


# --- schedule ------------------------------------------------------------------------------------------------------


def test_schedule_scores_the_month_that_just_closed():
    schedule = defs.resolve_schedule_def("yellow_monthly_scoring_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 6, 0, tzinfo=timezone.utc))
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-02-01"
    assert request.tags["trigger"] == "schedule"
    assert schedule.job_name == "yellow_month_end_to_end"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
