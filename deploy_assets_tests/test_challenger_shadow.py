"""@challenger is scored in shadow beside every published month: compared with @champion, never published."""

from __future__ import annotations

import dagster as dg
import duckdb

MONTHS = ["2024-02-01", "2024-03-01"]
SCORING = ["trip_predictions", "prediction_table"]


def test_a_challenger_scored_in_shadow_for_two_months_is_compared_and_never_published(project):
    for seed, month in enumerate(["2024-01-01", *MONTHS]):
        project.land(month, rows=5_000, seed=seed)
    assert project.materialize(["raw_trips"], "2024-01-01").success
    for month in MONTHS:
        assert project.materialize(["raw_trips", "duration_model"], month).success
    champion, challenger = (project.registry.version_for_partition(m) for m in MONTHS)
    client = project.registry
    client.promote(champion, allow_backwards=True)
    client.promote(challenger, alias="challenger")

    comparisons = {}
    for month in MONTHS:
        result = project.materialize(SCORING, month, run_config={"ops": {"yellow__trip_predictions": {"config": {"model": "champion"}}}})
        assert result.success
        [evaluation] = [
            e.event_specific_data for e in result.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            and e.event_specific_data.check_name == "challenger_comparison"
        ]
        comparisons[month] = {k: v.value for k, v in evaluation.metadata.items()}

    for month, numbers in comparisons.items():
        assert numbers["champion_version"] == champion and numbers["challenger_version"] == challenger
        assert numbers["rides"] == project.predictions.read_month(2024, int(month[5:7])).num_rows
        assert numbers["champion_rmse"] > 0 and numbers["challenger_rmse"] > 0
        assert 0 <= numbers["share_differing"] <= 1
        shadow = project.shadow_predictions.read_month(2024, int(month[5:7]))
        assert set(shadow["model_version"].to_pylist()) == {challenger}
        assert set(project.predictions.read_month(2024, int(month[5:7]))["model_version"].to_pylist()) == {champion}
    path = project.warehouse.url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as connection:
        served = connection.execute(f"SELECT DISTINCT model_version FROM {project.warehouse.table}").fetchall()
    assert served == [(champion,)]
