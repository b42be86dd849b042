"""duration_model trains the built-in model by default, or any scikit-learn estimator named in its config."""

from __future__ import annotations

import mlflow
import numpy as np

from deploy_assets.core.training import ZOOMCAMP_PIPELINE
from deploy_assets.core.objects import open_location, read_parquet

TRAIN, MONTH = "2024-01-01", "2024-02-01"
ALL = ["raw_trips", "duration_model", "trip_predictions", "prediction_table"]


def test_the_zoomcamp_pipeline_named_in_config_is_trained_registered_and_scores_the_month(project, monkeypatch):
    project.land(TRAIN, rows=5_000)
    project.land(MONTH, rows=5_000, seed=1)
    assert project.materialize(["raw_trips"], TRAIN).success
    config = {"ops": {"yellow__duration_model": {"config": ZOOMCAMP_PIPELINE}}}
    assert project.materialize(ALL, MONTH, run_config=config).success

    version = project.registry.version_for_partition(MONTH)
    scored = project.predictions.read_month(2024, 2)
    assert set(scored["model_version"].to_pylist()) == {version}

    # Called directly, the way the zoomcamp does: dicts of PU_DO and trip_distance into the fitted pipeline.
    clean = read_parquet(open_location(str(project.root / "warehouse")) / "yellow" / "raw_trips" / f"{MONTH}.parquet")
    records = [
        {"PU_DO": f"{pu}_{do}", "trip_distance": distance}
        for pu, do, distance in zip(
            clean["PULocationID"].to_pylist(), clean["DOLocationID"].to_pylist(), clean["trip_distance"].to_pylist()
        )
    ]
    # Through the environment (restored after the test), not MLflow's process-wide setters.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.registry.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", project.registry.tracking_uri)
    pipeline = mlflow.sklearn.load_model(f"models:/{project.registry.model_name}/{version}")
    assert [type(step).__name__ for _, step in pipeline.steps] == ["DictVectorizer", "LinearRegression"]
    np.testing.assert_allclose(scored["predicted_duration"].to_numpy(), pipeline.predict(records), rtol=1e-9, atol=1e-9)
