"""Every setting, read from the environment here and nowhere else.

One typed object per program, built once by `from_env` and passed to what needs it:
- `Settings`: the code location (what the asset graph looks like, where data lives, the registry, alerts);
- `ServingSettings`: the web service and the stream consumers (installed without Dagster);
- `ScoreMonthSettings`: the inputs of the one-shot `deploy-assets-score-month` command.

Each field names its variable, its default and what it does; docs/configuration.md lists the same and a test
keeps the two equal. Nothing here imports Dagster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from deploy_assets.core.datasets import Dataset
    from deploy_assets.core.features import RideRules

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_DATA_DIR = REPO_ROOT / ".data"
DUCKDB_PREFIX = "duckdb:///"

# The TLC services a deployment's months can come from (core.datasets.DATASETS).
TLC_DATASETS = ("yellow", "green", "fhv", "fhvhv")
# What a deployment does with a ride whose zone the file leaves null (FHV leaves ~15% so).
DROP_MISSING_ZONES, KEEP_MISSING_ZONES = "drop", "keep"

# The checks' limits a deployment may set (`resources.quality.QualityThresholds`). The output policy is not one: it is
# the model contract's, applied alike by batch scoring and the online services.
DEPLOYMENT_THRESHOLDS = ("max_dropped_share", "volume_tolerance", "max_adjusted_share")
# What a training spec holds (`core.training`): `builtin` or a scikit-learn dotted path, its params, its features.
TRAINING_SPEC_KEYS = ("estimator", "params", "features")

PARTITION_POLICY = "partition"
CHAMPION_POLICY = "champion"

T = TypeVar("T")


def flag(raw: str) -> bool:
    """`true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`)."""
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError("expected true or false")
    return value in ("true", "1", "yes", "on")


def json_object(raw: str) -> dict[str, Any]:
    """A JSON object given in a variable (a spec or a set of limits)."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def dataset_spec(raw: str) -> str | dict[str, Any]:
    """A TLC service's name, or a dataset of other files declared as a JSON object."""
    return json_object(raw) if raw.lstrip().startswith("{") else raw


def check_rides(dataset: str | Mapping[str, str], missing_zones: str, deployment: str | None = None) -> None:
    """A deployment's rides are those of a known dataset, and a ride without a zone is dropped or kept: what the
    code location and the online services both refuse to start without."""
    where = f"deployment {deployment!r}: " if deployment else ""
    if isinstance(dataset, str) and dataset not in TLC_DATASETS:
        raise ValueError(
            f"{where}DEPLOY_ASSETS_DATASET={dataset!r}: expected one of {', '.join(TLC_DATASETS)}, or a declared"
            " dataset"
        )
    if not isinstance(dataset, str):
        from deploy_assets.core.datasets import dataset_of

        try:
            dataset_of(dataset)
        except ValueError as error:
            raise ValueError(f"{where}DEPLOY_ASSETS_DATASET: {error}") from None
    if missing_zones not in (DROP_MISSING_ZONES, KEEP_MISSING_ZONES):
        raise ValueError(
            f"{where}DEPLOY_ASSETS_MISSING_ZONES={missing_zones!r}: expected {DROP_MISSING_ZONES!r} or"
            f" {KEEP_MISSING_ZONES!r}"
        )


def ride_rules(missing_zones: str) -> RideRules:
    """The valid-ride rules of a deployment that drops or keeps rides without a zone, batch and online alike."""
    from deploy_assets.core.features import RideRules

    return RideRules(keep_missing_zones=missing_zones == KEEP_MISSING_ZONES)


def env_field(variable: str, default: Any, what: str, *, parse: Callable[[str], Any] = str,
              also: tuple[str, ...] = (), at_launch: bool = False, empty: bool = False, own: bool = False) -> Any:
    """A setting read from `variable` (or, when it is unset, the first of `also` that is set). An empty variable
    is an unset one, as a container's `-e NAME=`, unless `empty` (then it is the empty value).

    `at_launch`: a secret or per-environment value that the code location passes to Dagster as an `EnvVar`, so
    it is resolved when a run or sensor starts and never stored in the definitions.

    `own`: what names a deployment's own model, table or objects. A deployment declared in YAML takes it from its
    YAML or its default (from its name), never from the variable: one variable would give every deployment the
    same model."""
    return field(default=default, metadata={
        "variable": variable, "what": what, "parse": parse, "also": also, "at_launch": at_launch, "empty": empty,
        "own": own,
    })


def variables(settings_class: type) -> dict[str, dataclasses.Field]:
    """The settings of a class by variable name."""
    return {f.metadata["variable"]: f for f in dataclasses.fields(settings_class)}


def _from_env(cls: type[T], environ: Mapping[str, str] | None, skip_own: bool = False, **overrides: Any) -> T:
    env = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(cls):
        if skip_own and f.metadata["own"]:
            continue
        for name in (f.metadata["variable"], *f.metadata["also"]):
            raw = env.get(name)
            if raw or (raw == "" and f.metadata["empty"]):
                try:
                    values[f.name] = f.metadata["parse"](raw)
                except ValueError as error:
                    raise ValueError(f"{name}={raw!r}: {error}") from None
                break
    return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


@dataclass(frozen=True)
class Settings:
    """The code location's settings: one deployment of the monthly graph."""

    name: str = env_field(
        "DEPLOY_ASSETS_DEPLOYMENT_NAME", "yellow",
        "the model deployment (a `defs/<name>/defs.yaml`): the key prefix and group of its assets, the prefix of its"
        " jobs' and sensors' names, and the default of its model, table and prediction locations",
    )
    deployments: tuple[str, ...] | None = env_field(
        "DEPLOY_ASSETS_DEPLOYMENTS", None,
        "the deployments the code location loads, comma-separated names (e.g. `yellow`, for a code location per"
        " team); default every one declared under `defs/`. A name not declared fails at load",
        parse=lambda raw: tuple(sorted({name.strip() for name in raw.split(",") if name.strip()})),
    )
    dataset: str | Mapping[str, str] = env_field(
        "DEPLOY_ASSETS_DATASET", "yellow",
        "the TLC service the deployment's months come from: `yellow`, `green`, `fhv` (for-hire vehicles: no trip"
        " distance), `fhvhv` (high-volume for-hire vehicles; `<service>_tripdata_YYYY-MM.parquet` in the landing"
        " zone, read in every layout the TLC published), or a dataset of other files declared as JSON (a YAML"
        " mapping in a `defs.yaml`): `file_prefix` (`<prefix>YYYY-MM.parquet`), `pickup_time`, `dropoff_time`,"
        " `pickup_zone`, `dropoff_zone`, optionally `distance` (its columns)",
        parse=dataset_spec,
    )
    missing_zones: str = env_field(
        "DEPLOY_ASSETS_MISSING_ZONES", DROP_MISSING_ZONES,
        "a ride whose pickup or dropoff zone the file leaves null: `drop` (dropped and counted) or `keep` (kept"
        " with zone -1, a feature value of its own, as the zoomcamp's `fillna(-1)`)",
    )
    # --- where data lives
    data_uri: str = env_field(
        "DEPLOY_ASSETS_DATA_URI", str(REPO_DATA_DIR),
        "root for landing, stored assets, predictions, shadow predictions and (with a local MLflow store) MLflow"
        " artifacts: a folder or `s3://bucket/prefix`",
    )
    landing_uri: str | None = env_field(
        "DEPLOY_ASSETS_LANDING_URI", None,
        "where TLC files land (also `https://d37ci6vzurychx.cloudfront.net/trip-data`, the TLC site); default"
        " `<data>/landing`",
    )
    warehouse_uri: str | None = env_field(
        "DEPLOY_ASSETS_WAREHOUSE_URI", None,
        "IO manager root of every deployment (`<name>/raw_trips/<partition>.parquet`); default `<data>/warehouse`"
    )
    predictions_uri: str | None = env_field(
        "DEPLOY_ASSETS_PREDICTIONS_URI", None,
        "the deployment's published prediction objects; default `<data>/predictions/<name>`", own=True,
    )
    shadow_predictions_uri: str | None = env_field(
        "DEPLOY_ASSETS_SHADOW_PREDICTIONS_URI", None,
        "the challenger's predictions, scored beside every published month, never published nor loaded into the"
        " table; default `<data>/shadow-predictions/<name>`", own=True,
    )
    predictions_db: str = env_field(
        "DEPLOY_ASSETS_PREDICTIONS_DB", f"{DUCKDB_PREFIX}{REPO_DATA_DIR / 'predictions.duckdb'}",
        "the database of every deployment's predictions table: a DuckDB file, or"
        " `postgresql://user@host:5432/db?sslmode=require` (password from `PGPASSWORD`). Not moved by"
        " `DEPLOY_ASSETS_DATA_URI`",
    )
    predictions_table: str | None = env_field(
        "DEPLOY_ASSETS_PREDICTIONS_TABLE", None,
        "the deployment's SQL table of published predictions; default `<name>_trip_predictions`", own=True,
    )
    aws_endpoint_url: str | None = env_field(
        "AWS_ENDPOINT_URL", None,
        "S3 (and SNS) endpoint for a non-AWS S3 such as moto; credentials only from the environment / IAM role",
    )
    # --- the registry
    mlflow_tracking_uri: str = env_field(
        "MLFLOW_TRACKING_URI", f"sqlite:///{REPO_DATA_DIR / 'mlflow' / 'mlflow.db'}",
        "tracking + registry. Not moved by `DEPLOY_ASSETS_DATA_URI`",
    )
    mlflow_artifacts: str | None = env_field(
        "DEPLOY_ASSETS_MLFLOW_ARTIFACTS", None,
        "artifact location of the experiment the code location creates; default `<data>/mlflow-artifacts` with a"
        " local store, the tracking server's own artifact root with an `http(s)://` one",
    )
    model_name: str | None = env_field(
        "DEPLOY_ASSETS_MODEL_NAME", None,
        "the deployment's registered model, and its MLflow experiment's name; default `<name>-trip-duration`",
        own=True,
    )
    training: Mapping[str, Any] | None = env_field(
        "DEPLOY_ASSETS_TRAINING", None,
        "the deployment's training spec, JSON (a YAML mapping in a `defs.yaml`): `estimator` (`builtin`, the"
        " zone-pair model, or a scikit-learn dotted path), `params`, `features`; the defaults of duration_model's"
        " run config (a run's config overrides them); default the built-in model", parse=json_object,
    )
    thresholds: Mapping[str, float] | None = env_field(
        "DEPLOY_ASSETS_THRESHOLDS", None,
        "the deployment's check limits, JSON (a YAML mapping in a `defs.yaml`), any of `max_dropped_share`,"
        " `volume_tolerance`, `max_adjusted_share`, over the code location's (docs/deployments.md, asset checks)",
        parse=json_object,
    )
    # --- the graph's shape
    first_month: str = env_field("DEPLOY_ASSETS_FIRST_MONTH", "2023-01-01", "first monthly partition")
    last_month: str | None = env_field(
        "DEPLOY_ASSETS_LAST_MONTH", None,
        "last monthly partition, for a deployment of a closed period (e.g. the months of one year); default the"
        " current month, a new partition each month",
    )
    training_months: int = env_field(
        "DEPLOY_ASSETS_TRAINING_MONTHS", 1, "training window k: `duration_model[M]` trains on the k months before M",
        parse=int,
    )
    scoring_policy: str = env_field(
        "DEPLOY_ASSETS_SCORING_POLICY", PARTITION_POLICY,
        "`partition`: M scored by its own model; `champion`: by @champion, re-scored when it moves (anything else"
        " fails at load)",
    )
    automation: bool = env_field(
        "DEPLOY_ASSETS_AUTOMATION", True,
        "whether the deployment's automation sensor starts running; `false`: it starts stopped (months run when"
        " launched, from the UI, `dg launch` or a backfill) until it is started in the UI", parse=flag,
    )
    sensor_interval_seconds: int = env_field(
        "DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS", 30,
        "how often the landing and champion sensors and the automation sensor evaluate", parse=int,
    )
    predictions_due_cron: str = env_field(
        "DEPLOY_ASSETS_PREDICTIONS_DUE_CRON", "0 6 3 * *",
        "deadline of a closed month's predictions, UTC cron: the 3rd at 06:00 (the freshness policy)",
    )
    predictions_due_window_minutes: int = env_field(
        "DEPLOY_ASSETS_PREDICTIONS_DUE_WINDOW_MINUTES", 54 * 60,
        "a materialization counts for a deadline when it is at most this long before it (54 h: from the month's"
        " close)", parse=int,
    )
    # --- alerts
    alert_webhook_url: str | None = env_field(
        "DEPLOY_ASSETS_ALERT_WEBHOOK_URL", None,
        "Slack-compatible incoming webhook for failure and overdue messages (a secret: an `EnvVar`, resolved at"
        " launch, never shown in the UI)", at_launch=True,
    )
    alert_sns_topic_arn: str | None = env_field(
        "DEPLOY_ASSETS_ALERT_SNS_TOPIC_ARN", None,
        "SNS topic for the same messages (on AWS, terraform's alerts topic; emails subscribe to it)", at_launch=True,
    )
    deployment: str | None = env_field(
        "DEPLOY_ASSETS_DEPLOYMENT", None, "name at the start of every message (several deployments, one channel)",
        at_launch=True,
    )
    dagster_url: str | None = env_field(
        "DEPLOY_ASSETS_DAGSTER_URL", None, "the Dagster UI's address, for the links in messages", at_launch=True
    )

    def __post_init__(self) -> None:
        if self.scoring_policy not in (PARTITION_POLICY, CHAMPION_POLICY):
            raise ValueError(
                f"DEPLOY_ASSETS_SCORING_POLICY={self.scoring_policy!r}: expected {PARTITION_POLICY!r} or"
                f" {CHAMPION_POLICY!r}"
            )
        check_rides(self.dataset, self.missing_zones, self.name)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(
                f"DEPLOY_ASSETS_DEPLOYMENT_NAME={self.name!r}: lower-case letters, digits and `_`, starting with a"
                " letter (it prefixes asset keys, job and sensor names and the table's)"
            )
        if self.predictions_table is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.predictions_table):
            raise ValueError(f"DEPLOY_ASSETS_PREDICTIONS_TABLE={self.predictions_table!r}: not a plain SQL table name")
        if self.last_month is not None and self.last_month[:7] < self.first_month[:7]:
            raise ValueError(
                f"DEPLOY_ASSETS_LAST_MONTH={self.last_month!r}: before the first month {self.first_month!r}"
            )
        if self.training_months < 1:
            raise ValueError(f"DEPLOY_ASSETS_TRAINING_MONTHS={self.training_months}: at least 1")
        for what, given, known in (("TRAINING", self.training, TRAINING_SPEC_KEYS),
                                   ("THRESHOLDS", self.thresholds, DEPLOYMENT_THRESHOLDS)):
            unknown = sorted(set(given or {}) - set(known))
            if unknown:
                raise ValueError(
                    f"deployment {self.name!r}: DEPLOY_ASSETS_{what} has {', '.join(unknown)}; expected any of"
                    f" {', '.join(known)}"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        return _from_env(cls, environ, **overrides)

    @classmethod
    def for_deployment(cls, environ: Mapping[str, str] | None = None, **declared: Any) -> Settings:
        """A deployment declared in YAML: what it declares, else the environment, except the `own` settings,
        which come from its YAML or its name."""
        return _from_env(cls, environ, skip_own=True, **declared)

    def location(self, name: str) -> str:
        """Where `name` lives unless its own variable is set: the landing zone and the IO manager's root are shared
        by every deployment (`<data>/landing`, `<data>/warehouse`); the predictions and shadow predictions are the
        deployment's own (`<data>/predictions/<deployment>`)."""
        own = getattr(self, f"{name}_uri")
        if own:
            return own
        shared = f"{self.data_uri.rstrip('/')}/{name.replace('_', '-')}"
        return shared if name in ("landing", "warehouse") else f"{shared}/{self.name}"

    @property
    def loaded(self) -> bool:
        """Whether the code location loads this deployment (`DEPLOY_ASSETS_DEPLOYMENTS`)."""
        return self.deployments is None or self.name in self.deployments

    @property
    def registered_model(self) -> str:
        return self.model_name or f"{self.name}-trip-duration"

    @property
    def table(self) -> str:
        return self.predictions_table or f"{self.name}_trip_predictions"

    @property
    def artifact_location(self) -> str | None:
        """A tracking server owns its artifact root; a local store keeps artifacts beside the data."""
        if self.mlflow_artifacts:
            return self.mlflow_artifacts
        return None if self.mlflow_tracking_uri.startswith("http") else f"{self.data_uri.rstrip('/')}/mlflow-artifacts"

    def launch_variable(self, name: str) -> str | None:
        """The variable of an `at_launch` setting when it is set (for an `EnvVar`), else None."""
        f = next(f for f in dataclasses.fields(self) if f.name == name)
        assert f.metadata["at_launch"], name
        return f.metadata["variable"] if getattr(self, name) else None


@dataclass(frozen=True)
class ServingSettings:
    """The web service's and the stream consumers' settings (flags of the commands override them)."""

    mlflow_tracking_uri: str | None = env_field(
        "MLFLOW_TRACKING_URI", None,
        "the registry the model is loaded from; unset, MLflow's own default (`sqlite:///mlflow.db` in the working"
        " folder), **not** the code location's store: set it",
    )
    deployment: str | None = env_field(
        "DEPLOY_ASSETS_DEPLOYMENT_NAME", None,
        "the deployment served (one process per deployment): the web service answers at `/deployments/<name>/…`"
        " as well as at `/…`, which is how a load balancer routes to each deployment's service",
    )
    dataset: str | Mapping[str, str] = env_field(
        "DEPLOY_ASSETS_DATASET", "yellow",
        "the served deployment's dataset, as its `defs.yaml` declares it (the code location's"
        " `DEPLOY_ASSETS_DATASET`): a request is one of its rides, with its ride features (`fhv`: no"
        " `trip_distance`), and a model reading a ride column it lacks is not loaded",
        parse=dataset_spec,
    )
    missing_zones: str = env_field(
        "DEPLOY_ASSETS_MISSING_ZONES", DROP_MISSING_ZONES,
        "the served deployment's `missing_zones`: `keep` also accepts zone -1 (unknown), the value its batch gives"
        " a null zone; `drop`: zones 1..265 only",
    )
    model_name: str = env_field(
        "DEPLOY_ASSETS_MODEL_NAME", "trip-duration",
        "the registered model served (`--model-name` overrides); the default is the shipped `yellow` deployment's",
    )
    model_alias: str = env_field(
        "DEPLOY_ASSETS_MODEL_ALIAS", "champion",
        "the alias served (`challenger` for the shadow stream consumer; `--model-alias` overrides)",
    )
    model_refresh_seconds: float = env_field(
        "DEPLOY_ASSETS_MODEL_REFRESH_SECONDS", 30.0,
        "how often the alias is polled (`--refresh-seconds` overrides; terraform sets `30` for the web tasks, `60`"
        " for the Lambdas)", parse=float,
    )
    shadow_alias: str | None = env_field(
        "DEPLOY_ASSETS_SHADOW_ALIAS", None,
        "e.g. `challenger`: mirror every web request and stream batch to that alias off the request path",
    )
    shadow_threshold_minutes: float = env_field(
        "DEPLOY_ASSETS_SHADOW_THRESHOLD_MINUTES", 5.0,
        "a shadow answer differing by more than this counts as a disagreement", parse=float,
    )
    api_key: str | None = env_field(
        "DEPLOY_ASSETS_API_KEY", None,
        "the web service's predict endpoints answer 401 unless the request sends it in `X-API-Key`",
    )
    ride_events_stream: str | None = env_field(
        "DEPLOY_ASSETS_RIDE_EVENTS_STREAM", None,
        "the Kinesis stream of ride events (the Lambda gets its records from the event source mapping instead)",
    )
    ride_predictions_stream: str | None = env_field(
        "DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM", None,
        "the Kinesis stream predictions are written to; the zoomcamp's `PREDICTIONS_STREAM_NAME` is read when it is"
        " unset", also=("PREDICTIONS_STREAM_NAME",),
    )
    stream_dead_letter: str | None = env_field(
        "DEPLOY_ASSETS_STREAM_DEAD_LETTER", None, "`kinesis://STREAM` or `s3://BUCKET/PREFIX` for invalid events"
    )
    stream_checkpoint: str | None = env_field(
        "DEPLOY_ASSETS_STREAM_CHECKPOINT", None,
        "the local runner's checkpoint: a file or `s3://BUCKET/KEY`; default"
        " `<repo>/.data/stream/checkpoints-<input stream>.json`",
    )

    def __post_init__(self) -> None:
        check_rides(self.dataset, self.missing_zones, self.deployment)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServingSettings:
        return _from_env(cls, environ, **overrides)

    @property
    def ride_dataset(self) -> Dataset:
        """The dataset of the rides served: its features are a request's fields, as they are its batch rides'."""
        from deploy_assets.core.datasets import dataset_of

        return dataset_of(self.dataset)

    @property
    def ride_rules(self) -> RideRules:
        return ride_rules(self.missing_zones)


@dataclass(frozen=True)
class ScoreMonthSettings:
    """The one-shot command's inputs: the zoomcamp's `docker run -e DATE=… -e BUCKET=… image`."""

    date: str | None = env_field(
        "DATE", None, "any day of the month to score, or `YYYY-MM` (required, or `--date`)", also=("DEPLOY_ASSETS_MONTH",)
    )
    deployment: str | None = env_field(
        "DEPLOYMENT", None,
        "score only this deployment; default every one declared whose landing file for the month is there",
        also=("DEPLOY_ASSETS_DEPLOYMENT_NAME",),
    )
    bucket: str | None = env_field(
        "BUCKET", None,
        "sets `DEPLOY_ASSETS_DATA_URI=s3://BUCKET/PREFIX` unless that is set; then an unset `MLFLOW_TRACKING_URI` /"
        " `DEPLOY_ASSETS_PREDICTIONS_DB` means a registry / table for this run only, in a temporary folder, with"
        " `DEPLOY_ASSETS_MLFLOW_ARTIFACTS=$DEPLOY_ASSETS_DATA_URI/mlflow-artifacts` (models and predictions still"
        " land in the bucket)",
    )
    prefix: str = env_field("PREFIX", "deploy-assets", "the prefix under `BUCKET` (empty: the bucket's root)", empty=True)
    instance: str = env_field(
        "SCORE_MONTH_INSTANCE", "ephemeral", "`home`: record the runs in `DAGSTER_HOME`'s instance; default a throw-away one"
    )
    log_level: str = env_field("SCORE_MONTH_LOG_LEVEL", "WARNING", "the Dagster console log level of the run")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ScoreMonthSettings:
        return _from_env(cls, environ, **overrides)


def configuration_table(settings_class: type) -> str:
    """The Markdown table of a settings class, as docs/configuration.md shows it (a test compares the two)."""

    def default(value: Any) -> str:
        if value is None:
            return "–"
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f"`{text.replace(str(REPO_ROOT), '<repo>')}`" if text else "(empty)"

    rows = ["| variable | default | what |", "|---|---|---|"]
    for f in dataclasses.fields(settings_class):
        names = " or ".join(f"`{name}`" for name in (f.metadata["variable"], *f.metadata["also"]))
        own = " (own: a YAML deployment takes it from its YAML or its name, not from the variable)" if f.metadata["own"] else ""
        rows.append(f"| {names} | {default(f.default)} | {f.metadata['what']}{own} |")
    return "\n".join(rows)


def dagster_home(environ: Mapping[str, str] | None = None) -> Path:
    """`$DAGSTER_HOME`, or the repo's `.data/dagster_home` (what `scripts/demo.sh` and `scripts/dev.sh` use)."""
    env = os.environ if environ is None else environ
    return Path(env.get("DAGSTER_HOME") or REPO_DATA_DIR / "dagster_home")
