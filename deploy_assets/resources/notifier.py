"""Where notifications go: a Slack-compatible webhook (`{"text": ...}`) and/or an SNS topic (emails on AWS).

Nothing configured: nothing is sent (the sensors log that they skipped). A channel that fails raises after the
others were tried, so the sensor's tick fails visibly in the UI and the message is tried again on the next tick.
"""

from __future__ import annotations

import json
import urllib.request

import dagster as dg
from pydantic import Field

from deploy_assets.core.alerts import subject


class NotificationError(RuntimeError):
    """A channel refused or could not be reached; the message names it (never the webhook URL: it is a secret)."""


class Notifier(dg.ConfigurableResource):
    """Sends one text message to every configured channel."""

    webhook_url: str | None = Field(default=None, description="Slack-compatible incoming webhook (a secret)")
    sns_topic_arn: str | None = Field(default=None, description="SNS topic the message is published to")
    endpoint_url: str | None = Field(default=None, description="AWS endpoint for a non-AWS SNS (e.g. moto)")
    deployment: str | None = Field(default=None, description="name prefixed to every message (several deployments)")
    dagster_url: str | None = Field(default=None, description="Dagster UI address, for links to runs and assets")
    timeout_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or self.sns_topic_arn)

    def link(self, path: str) -> str | None:
        return f"{self.dagster_url.rstrip('/')}/{path.lstrip('/')}" if self.dagster_url else None

    def send(self, message: str) -> list[str]:
        """Send `message` to every channel; returns the channels it reached."""
        sent, errors = [], []
        if self.webhook_url:
            try:
                self._post_webhook(message)
                sent.append("webhook")
            except Exception as error:  # noqa: BLE001 - reported below, after the other channels were tried
                errors.append(f"webhook: {type(error).__name__}: {error}")
        if self.sns_topic_arn:
            try:
                self._publish_sns(message)
                sent.append("sns")
            except Exception as error:  # noqa: BLE001
                errors.append(f"SNS {self.sns_topic_arn}: {type(error).__name__}: {error}")
        if errors:
            raise NotificationError(f"notification not delivered ({'; '.join(errors)}); sent to: {sent or 'none'}")
        return sent

    def _post_webhook(self, message: str) -> None:
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps({"text": message}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310 - configured URL
            response.read()

    def _publish_sns(self, message: str) -> None:
        import boto3

        client = boto3.client("sns", endpoint_url=self.endpoint_url)
        client.publish(TopicArn=self.sns_topic_arn, Subject=subject(message), Message=message)
