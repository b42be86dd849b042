"""What a notification says and where it goes, in process: the message texts (pure), the notifier's webhook
(a loopback receiver) and SNS (mock_aws), and the run-failure sensor on a real failed in-process run."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import dagster as dg
import pytest
from moto import mock_aws

from deploy_assets.assets.errors import failures_named, partition_failure
from deploy_assets.core.alerts import due_month, overdue_message, parse_failure, run_failure_message, subject
from deploy_assets.core.schema import TripDataError
from deploy_assets.definitions import defs
from deploy_assets.notifications import PUBLISHED, predictions_due
from deploy_assets.resources import build_resources
from deploy_assets.settings import Settings
from deploy_assets.resources.notifier import NotificationError, Notifier
from deploy_assets_tests.webhook_receiver import WebhookReceiver

failure_alert_sensor = defs.get_sensor_def("failure_alert_sensor")
CORRUPT = "yellow/raw_trips[2024-03-01] failed: <landing>/yellow_tripdata_2024-03.parquet: not a readable Parquet file (Corrupt snappy compressed data.)"


def test_a_failed_month_names_the_asset_the_month_and_the_cause():
    message = run_failure_message([CORRUPT], "Steps failed: ['yellow_ingest']", run_id="abc", job="__ASSET_JOB")
    headline, where = message.splitlines()
    assert headline == (
        "yellow/raw_trips 2024-03-01 failed: <landing>/yellow_tripdata_2024-03.parquet: not a readable Parquet file "
        "(Corrupt snappy compressed data.)"
    )
    assert where == "run abc"


def test_a_blocking_check_and_a_refused_model_say_so():
    check = "yellow/trip_predictions[2024-02-01] failed: check trip_predictions_complete failed, nothing published: 3 nulls"
    refused = (
        "deploy_assets.assets.errors.Failure: yellow/model_promotion[2024-02-01] failed: ModelContractError: model version 4"
        " cannot be deployed: it asks for column 'passenger_count' (signature), which the platform does not compute"
    )
    assert parse_failure(check).kind == "blocking check trip_predictions_complete failed"
    assert parse_failure(refused).kind == "model refused at promotion"
    message = run_failure_message(
        [check, f"Error occurred while executing op 'yellow__model_promotion':\n{refused}"], "", run_id="r1", job="j",
        deployment="stg", run_url="http://dagster.internal/runs/r1",
    )
    assert message.splitlines() == [
        "[stg] yellow/trip_predictions 2024-02-01 blocking check trip_predictions_complete failed: check "
        "trip_predictions_complete failed, nothing published: 3 nulls",
        "- yellow/model_promotion 2024-02-01 model refused at promotion: ModelContractError: model version 4 cannot be "
        "deployed: it asks for column 'passenger_count' (signature), which the platform does not compute",
        "run r1: http://dagster.internal/runs/r1",
    ]


def test_a_run_that_failed_without_a_named_month_says_what_the_run_said():
    message = run_failure_message([], "Run worker exited unexpectedly", run_id="r2", job="yellow_month_end_to_end", partition="2024-05-01")
    assert message.splitlines()[0] == "run of yellow_month_end_to_end 2024-05-01 failed: Run worker exited unexpectedly"


def test_an_overdue_asset_names_the_month_that_was_due():
    assert due_month(datetime(2025, 1, 3, 6, 0, 30, tzinfo=timezone.utc)) == "2024-12-01"
    message = overdue_message(
        "yellow/prediction_table", datetime(2024, 4, 3, 6, 1, tzinfo=timezone.utc), deadline="cron '0 6 3 * *' UTC",
        latest_month="2024-02-01", latest_at=datetime(2024, 3, 2, 7, 0, tzinfo=timezone.utc),
    )
    assert message.splitlines() == [
        "yellow/prediction_table 2024-03-01 overdue: not materialized by its deadline (cron '0 6 3 * *' UTC)",
        "latest materialization: 2024-02-01 at 2024-03-02 07:00 UTC",
    ]
    assert "never materialized" in overdue_message("yellow/trip_predictions", datetime.now(timezone.utc), deadline="d",
                                                   latest_month=None, latest_at=None)


def test_the_sns_subject_is_short_printable_ascii():
    assert subject("[stg] yellow/raw_trips 2024-03-01 failed: données — x\nmore") == (
        "[stg] yellow/raw_trips 2024-03-01 failed: donn?es ? x"
    )
    assert len(subject("x" * 300)) == 100


def test_the_published_outputs_are_due_by_the_3rd_at_6_utc():
    due = predictions_due(Settings())
    assert due.deadline_cron == "0 6 3 * *" and due.timezone == "UTC"
    assert due.lower_bound_delta.total_seconds() == (2 * 24 + 6) * 3600  # from the month's close
    policies = {spec.key: spec.freshness_policy for spec in defs.resolve_all_asset_specs()}
    # Every deployment's published outputs, and nothing else.
    assert {key for key, policy in policies.items() if policy is not None} == {
        dg.AssetKey([deployment, asset]) for deployment in ("fhv", "green", "yellow") for asset in PUBLISHED
    }


def test_notifier_settings_come_from_the_environment_at_launch(monkeypatch):
    monkeypatch.setenv("DEPLOY_ASSETS_ALERT_WEBHOOK_URL", "https://hooks.test.internal/T0/B0/secret")
    monkeypatch.delenv("DEPLOY_ASSETS_ALERT_SNS_TOPIC_ARN", raising=False)
    notifier = build_resources(Settings.from_env())["notifier"]
    assert isinstance(notifier.webhook_url, dg.EnvVar) and notifier.sns_topic_arn is None
    monkeypatch.delenv("DEPLOY_ASSETS_ALERT_WEBHOOK_URL")
    assert build_resources(Settings.from_env())["notifier"].configured is False


@mock_aws
def test_a_message_reaches_the_webhook_and_the_sns_topic(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    with WebhookReceiver() as receiver:
        assert Notifier(webhook_url=receiver.url, sns_topic_arn=topic).send(CORRUPT) == ["webhook", "sns"]
        assert receiver.texts() == [CORRUPT]
    (delivered,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(delivered["Body"])
    assert body["Message"] == CORRUPT and body["Subject"] == subject(CORRUPT)


def test_a_refusing_webhook_fails_loudly_without_leaking_its_url():
    with WebhookReceiver(status=500) as receiver:
        with pytest.raises(NotificationError) as raised:
            Notifier(webhook_url=receiver.url).send("x")
    assert "HTTP Error 500" in str(raised.value) and receiver.url not in str(raised.value)


@dg.asset(key_prefix=["yellow"], partitions_def=dg.MonthlyPartitionsDefinition(start_date="2024-01-01"))
def raw_trips(context) -> None:
    with failures_named("yellow/raw_trips", context.partition_key):
        raise TripDataError(
            "<landing>/yellow_tripdata_2024-03.parquet", "not a readable Parquet file (Corrupt snappy compressed data.)"
        )


@dg.asset
def unnamed() -> None:
    raise partition_failure("yellow/model_promotion", "2024-02-01", "ModelContractError: model version 4 cannot be deployed: x")


def test_the_failure_sensor_reports_a_failed_run_once_with_its_month_and_cause():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([raw_trips], partition_key="2024-03-01", instance=instance, raise_on_error=False)
    assert not result.success
    with WebhookReceiver() as receiver:
        context = dg.build_run_status_sensor_context(
            sensor_name="failure_alert_sensor", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        failure_alert_sensor(context, notifier=Notifier(webhook_url=receiver.url, deployment="stg"))
        (text,) = receiver.texts()
    assert text.splitlines()[0] == f"[stg] {CORRUPT.replace('[2024-03-01] failed:', ' 2024-03-01 failed:')}"
    assert result.dagster_run.run_id in text


def test_a_failed_run_that_dagster_will_retry_is_not_reported():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([unnamed], instance=instance, raise_on_error=False, tags={"dagster/will_retry": "true"})
    with WebhookReceiver() as receiver:
        context = dg.build_run_status_sensor_context(
            sensor_name="failure_alert_sensor", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
            dagster_run=result.dagster_run,
        ).for_run_failure()
        skipped = failure_alert_sensor(context, notifier=Notifier(webhook_url=receiver.url))
        assert receiver.texts() == []
    assert "will be retried" in skipped.skip_message
