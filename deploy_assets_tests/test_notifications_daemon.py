"""Someone hears about it, over the real dagster-daemon and a webhook receiver on loopback: a corrupt month is
reported once, with its month and cause; a month that succeeds (even after a retried step) is not; predictions
that miss their deadline show as overdue in GraphQL and are reported once. Messages name the deployment's asset
(`yellow/raw_trips`), as the UI does."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from deploy_assets_tests.daemon_platform import MONTHS, Platform
from deploy_assets_tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

FRESHNESS_STATUS = """
query Freshness($keys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $keys) { assetKey { path } freshnessStatusInfo { freshnessStatus } }
}
"""


def retried_steps(instance: dg.DagsterInstance) -> list[str]:
    """`run_id step` for every step a RetryPolicy sent back for another attempt, in any run."""
    return [
        f"{run.run_id} {entry.step_key}"
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    ]


def test_a_corrupt_month_is_reported_once_and_months_that_succeed_are_not(tmp_path):
    january, february, march = MONTHS[:3]
    with WebhookReceiver() as receiver:
        platform = Platform(tmp_path / "n", {"DEPLOY_ASSETS_ALERT_WEBHOOK_URL": receiver.url, "DEPLOY_ASSETS_DEPLOYMENT": "test"})
        try:
            # A reader holds the predictions table open: February's table step fails with DuckDB's lock error
            # (transient), is retried by its RetryPolicy once the reader has gone, and the run succeeds.
            table = platform.root / "predictions.duckdb"
            duckdb.connect(str(table)).close()
            reader = duckdb.connect(str(table), read_only=True)
            try:
                platform.start()
                platform.land(january)
                platform.land(february)
                platform.daemon.wait_until(lambda: retried_steps(platform.instance), 420, "a step sent back for retry")
            finally:
                reader.close()
            platform.wait_until(lambda: platform.converged([february]), "February published after the retry")
            assert any(step.endswith(" yellow__prediction_table") for step in retried_steps(platform.instance))
            platform.wait_quiet()
            assert receiver.texts() == [], "a month that succeeded (after a retried step) was reported"

            (platform.landing / f"yellow_tripdata_{march[:7]}.parquet").write_bytes(b"PAR1 not really parquet")
            platform.daemon.wait_until(lambda: receiver.texts(), 420, "a notification of the failed month")
            failed = platform.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            assert len(failed) == 1
            platform.wait_quiet(failures_allowed=True)  # automation and the failure sensor ticked again: nothing more
            (text,) = receiver.texts()
            headline, where = text.splitlines()
            assert headline.startswith(f"[test] yellow/raw_trips {march} failed: ")
            assert f"yellow_tripdata_{march[:7]}.parquet: not a readable Parquet file" in headline
            assert where == f"run {failed[0].run_id}"
        finally:
            platform.stop()


def test_predictions_past_their_deadline_show_overdue_in_graphql_and_are_reported_once(tmp_path):
    """A deadline every minute with a one-minute window (the same cron policy as the 3rd at 06:00, sooner)."""
    january, february = MONTHS[:2]
    with WebhookReceiver() as receiver:
        platform = Platform(
            tmp_path / "f",
            {
                "DEPLOY_ASSETS_ALERT_WEBHOOK_URL": receiver.url,
                "DEPLOY_ASSETS_PREDICTIONS_DUE_CRON": "* * * * *",
                "DEPLOY_ASSETS_PREDICTIONS_DUE_WINDOW_MINUTES": "1",
                "FRESHNESS_DAEMON_INTERVAL_SECONDS": "2",
            },
        )
        try:
            platform.start()  # first: it creates the instance's storage the webserver opens
            platform.start_webserver()
            platform.land(january)
            platform.land(february)
            platform.wait_until(lambda: platform.converged([february]), "February published")
            platform.wait_webserver()
            keys = [{"path": ["yellow", "trip_predictions"]}, {"path": ["yellow", "prediction_table"]}]

            def statuses() -> dict[str, str]:
                nodes = platform.graphql(FRESHNESS_STATUS, {"keys": keys})["assetNodes"]
                return {
                    "/".join(node["assetKey"]["path"]): node["freshnessStatusInfo"]["freshnessStatus"] for node in nodes
                }

            # Nothing materializes after February: within two minutes a deadline passes with nothing in its window.
            platform.daemon.wait_until(
                lambda: set(statuses().values()) == {"DEGRADED"} and len(receiver.texts()) >= 2, 240,
                "both published outputs overdue in GraphQL and notified",
            )
            platform.wait_quiet()  # the freshness daemon and the alert sensor evaluated again: nothing more
            assert statuses() == {"yellow/trip_predictions": "DEGRADED", "yellow/prediction_table": "DEGRADED"}
            texts = sorted(receiver.texts())
            assert [text.split(" ")[0] for text in texts] == ["yellow/prediction_table", "yellow/trip_predictions"], texts
            for text in texts:
                headline, latest = text.splitlines()
                assert " overdue: not materialized by its deadline (cron '* * * * *' UTC" in headline
                assert latest.startswith(f"latest materialization: {february} at ")
            assert platform.failed_runs() == []
        finally:
            platform.stop()
