# Notifications (deploy_assets/notifications.py): the code location's sensors publish failed runs and overdue
# predictions to this topic, and every address in var.alert_emails receives them (after confirming the
# subscription AWS mails it once). Encrypted with the stack key, which the code location may use.

resource "aws_sns_topic" "alerts" {
  name              = "${local.name}-alerts"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "alert_emails" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}
