"""`ModelDeployment`: one model deployment declared in a `defs.yaml`, built into its monthly graph.

    type: deploy_assets.components.ModelDeployment
    attributes:
      name: green
      dataset: green
      first_month: "2023-01-01"
      model_name: "{{ env('GREEN_MODEL_NAME', 'green-trip-duration') }}"
      training:                      # core.training's spec: `builtin` or a scikit-learn dotted path
        estimator: sklearn.ensemble.RandomForestRegressor
        params: {n_estimators: 50, max_depth: 12}
      thresholds: {max_dropped_share: 0.3}

Every attribute is a setting of `deploy_assets.settings.Settings` (docs/configuration.md): what the YAML gives
wins; what it leaves out comes from the environment (`DEPLOY_ASSETS_*`) or the default, except the deployment's
own names (model, table, prediction locations), which default from `name`. Values may use `{{ env.NAME }}` or
`{{ env('NAME', 'default') }}`.
"""

from dataclasses import dataclass
from typing import Any

import dagster as dg

from deploy_assets.deployment import build_definitions
from deploy_assets.settings import Settings


@dataclass
class ModelDeployment(dg.Component, dg.Resolvable):
    """A monthly model deployment: the months landed, a model trained and registered per month, each month scored,
    audited and published (Parquet and a SQL table), kept right by automation. Its assets are `<name>/...`."""

    name: str
    dataset: str | dict[str, str] | None = None
    missing_zones: str | None = None
    first_month: str | None = None
    last_month: str | None = None
    training_months: int | None = None
    scoring_policy: str | None = None
    model_name: str | None = None
    predictions_table: str | None = None
    landing_uri: str | None = None
    predictions_uri: str | None = None
    shadow_predictions_uri: str | None = None
    automation: bool | None = None
    sensor_interval_seconds: int | None = None
    training: dict[str, Any] | None = None
    thresholds: dict[str, float] | None = None

    def settings(self) -> Settings:
        declared = {name: value for name, value in vars(self).items() if value not in (None, "")}
        return Settings.for_deployment(**declared)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        settings = self.settings()
        return build_definitions(settings) if settings.loaded else dg.Definitions()
