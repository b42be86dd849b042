"""Someone hears about it: a message when a run fails for good, and when the published predictions miss their
deadline. Both go through the `notifier` resource (webhook and/or SNS); the texts are `core.alerts`.

- `failure_alert_sensor` (Dagster's run-failure sensor, over every code location of the instance): one message per
  failed run, naming the asset, the month and the cause. A step retried by its RetryPolicy runs again inside the
  same run, so a run that succeeds after retries never fails and is never reported; a failed run that Dagster's
  run retries will re-execute (`dagster/will_retry`) is not reported either, only its last attempt.
- `predictions_due`: a cron `FreshnessPolicy` on each deployment's published outputs. Dagster's freshness daemon
  (part of `dagster-daemon`) evaluates it and marks an asset overdue (FAIL) in the UI once a deadline passes with
  no materialization in the window before it; the deployment's `<name>_freshness_alert_sensor` sends one message
  per asset each time its state turns to FAIL. Dagster evaluates freshness per asset, from its latest
  materialization of any month.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg

from deploy_assets.assets.monthly import Deployment
from deploy_assets.automation import sensor_minimum_interval
from deploy_assets.core.alerts import overdue_message, run_failure_message
from deploy_assets.resources.notifier import Notifier
from deploy_assets.settings import Settings

PUBLISHED = ("trip_predictions", "prediction_table")
WILL_RETRY_TAG = "dagster/will_retry"  # set on a failed run by Dagster when run retries will re-execute it


def predictions_due(settings: Settings) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.cron(
        deadline_cron=settings.predictions_due_cron,
        lower_bound_delta=timedelta(minutes=settings.predictions_due_window_minutes),
        timezone="UTC",
    )


def published(deployment: Deployment) -> list[dg.AssetKey]:
    return [deployment.key(asset) for asset in PUBLISHED]


def with_deadline(deployment: Deployment):
    """For `dg.map_asset_specs`: the deployment's published outputs get its predictions' deadline."""
    policy, keys = predictions_due(deployment.settings), published(deployment)
    return lambda spec: dg.apply_freshness_policy(spec, policy) if spec.key in keys else spec


def _error_text(event: dg.DagsterEvent) -> str:
    """What a failed step said: its `dg.Failure` description, else its chain of exception messages."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    lines, error = [], data.error
    while error is not None:
        lines.append(error.message.strip())
        error = error.cause
    return "\n".join(lines)


def build_failure_alert_sensor(settings: Settings) -> dg.SensorDefinition:
    """failure_alert_sensor, one for the code location (every deployment's runs), every `sensor_interval_seconds`."""

    @dg.run_failure_sensor(
        name="failure_alert_sensor",
        monitor_all_code_locations=True,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=sensor_minimum_interval(settings.sensor_interval_seconds),
        description="One message per failed run (asset, month, cause) to the notifier's webhook and SNS topic.",
    )
    def failure_alert_sensor(context: dg.RunFailureSensorContext, notifier: Notifier):
        run = context.dagster_run
        if run.tags.get(WILL_RETRY_TAG) == "true":
            return dg.SkipReason(f"run {run.run_id} will be retried: only its last attempt is reported")
        if not notifier.configured:
            return dg.SkipReason("no notification channel configured (DEPLOY_ASSETS_ALERT_*)")
        message = run_failure_message(
            [_error_text(event) for event in context.get_step_failure_events()],
            context.failure_event.message or "",
            run_id=run.run_id,
            job=run.job_name,
            partition=run.tags.get("dagster/partition"),
            deployment=notifier.deployment,
            run_url=notifier.link(f"runs/{run.run_id}"),
        )
        sent = notifier.send(message)
        context.log.info(f"run {run.run_id}: notified {sent}: {message.splitlines()[0]}")

    return failure_alert_sensor


def build_freshness_alert_sensor(deployment: Deployment) -> dg.SensorDefinition:
    """`<name>_freshness_alert_sensor`: the deployment's published outputs turning overdue."""
    settings = deployment.settings
    deadline = (
        f"cron '{settings.predictions_due_cron}' UTC, within {settings.predictions_due_window_minutes} min before it"
    )

    @dg.sensor(
        name=deployment.named("freshness_alert_sensor"),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=sensor_minimum_interval(settings.sensor_interval_seconds),
        description="One message each time a published output turns overdue (its freshness state becomes FAIL).",
    )
    def freshness_alert_sensor(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SensorResult:
        if not notifier.configured:
            return dg.SensorResult(skip_reason="no notification channel configured (DEPLOY_ASSETS_ALERT_*)")
        # asset → time of the FAIL state already reported: a state turns FAIL once per missed deadline
        reported: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
        sent = []
        for key, record in context.instance.get_freshness_state_records(published(deployment)).items():
            name, changed = key.to_user_string(), record.updated_at.timestamp()
            if record.freshness_state != "FAIL" or reported.get(name, 0.0) >= changed:
                continue
            latest = context.instance.get_latest_materialization_event(key)
            materialization = latest.asset_materialization if latest is not None else None
            message = overdue_message(
                name,
                record.updated_at,
                deadline=deadline,
                latest_month=materialization.partition if materialization is not None else None,
                latest_at=datetime.fromtimestamp(latest.timestamp, timezone.utc) if latest is not None else None,
                deployment=notifier.deployment,
                asset_url=notifier.link(f"assets/{name}"),
            )
            notifier.send(message)
            context.log.info(f"notified: {message.splitlines()[0]}")
            reported[name] = changed
            sent.append(name)
        return dg.SensorResult(
            cursor=json.dumps(reported, sort_keys=True), skip_reason=None if sent else "no output newly overdue"
        )

    return freshness_alert_sensor
