# Streaming scoring: ride events in, predictions out. On-demand capacity, KMS-encrypted with the stack's key.

resource "aws_kinesis_stream" "ride_events" {
  name             = "${local.name}-ride_events"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

resource "aws_kinesis_stream" "ride_predictions" {
  name             = "${local.name}-ride_predictions"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

# The shadow consumer (the @challenger model) writes here, never to ride_predictions: its answers are compared,
# not served.
resource "aws_kinesis_stream" "ride_predictions_shadow" {
  name             = "${local.name}-ride_predictions_shadow"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.main.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}
