# Streaming scoring, per deployment (var.deployments): its ride events in, its predictions out. On-demand
# capacity, KMS-encrypted with the stack's key. Names: <name>-<deployment>-ride_events, ...

resource "aws_kinesis_stream" "ride_events" {
  for_each = var.deployments

  name             = "${local.name}-${each.key}-ride_events"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

resource "aws_kinesis_stream" "ride_predictions" {
  for_each = var.deployments

  name             = "${local.name}-${each.key}-ride_predictions"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

# The deployment's shadow consumer (its @challenger model) writes here, never to ride_predictions: its answers
# are compared, not served.
resource "aws_kinesis_stream" "ride_predictions_shadow" {
  for_each = var.deployments

  name             = "${local.name}-${each.key}-ride_predictions_shadow"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}
