# Stream scoring: Lambda functions fed by Kinesis event source mappings (AWS keeps the checkpoints, runs one
# concurrent batch per shard and scales with the shards; no consumer of ours to operate). Two consumers per
# deployment <d> of var.deployments, each on that deployment's own streams and model:
#
#   <d>-ride_events ──ESM──► <name>-stream-<d>-champion (<model_name>@champion)   ──► <d>-ride_predictions
#                   └─ESM──► <name>-stream-<d>-shadow   (<model_name>@challenger) ──► <d>-ride_predictions_shadow
#
# All functions run the serving image (ECR repository `serving`) with the handler
# deploy_assets.serving.stream.lambda_handler.handler. Each mapping: micro-batches of var.stream_batch_size
# records or var.stream_batching_window_seconds, ReportBatchItemFailures (the handler names the records it could
# not write; Lambda retries from the lowest of them), bisect on error, bounded retries and record age, and a
# batch that still fails goes to the consumer's SQS on-failure queue (its shard/sequence range, for a replay).
# Events that are not valid ride events are not failures: the handler writes them with their reason under
# s3://<predictions bucket>/stream-dead-letters/<consumer>/, <consumer> being "<d>-<kind>" (e.g. yellow-champion).

locals {
  # What a consumer kind is, the same for every deployment.
  stream_consumer_kinds = {
    champion = {
      alias             = "champion"
      starting_position = "TRIM_HORIZON"
    }
    shadow = {
      alias             = var.shadow_model_alias
      starting_position = "LATEST"
    }
  }
  # The stream each kind writes, by deployment.
  stream_outputs = {
    champion = aws_kinesis_stream.ride_predictions
    shadow   = aws_kinesis_stream.ride_predictions_shadow
  }
  # One consumer per deployment and kind, keyed "<deployment>-<kind>" (deployment names have no hyphen: unique).
  stream_consumers = merge([
    for deployment, spec in var.deployments : {
      for kind, consumer in local.stream_consumer_kinds : "${deployment}-${kind}" => {
        deployment        = deployment
        kind              = kind
        model_name        = spec.model_name
        dataset           = spec.dataset
        missing_zones     = spec.missing_zones
        alias             = consumer.alias
        output_stream     = local.stream_outputs[kind][deployment]
        starting_position = consumer.starting_position
      }
    }
  ]...)
  stream_dead_letter_prefix = "stream-dead-letters"
}

resource "aws_sqs_queue" "stream_on_failure" {
  for_each = local.stream_consumers

  name                              = "${local.name}-stream-${each.key}-on-failure"
  message_retention_seconds         = 1209600 # 14 days: time to look and replay
  kms_master_key_id                 = aws_kms_key.main.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_cloudwatch_log_group" "stream" {
  for_each = local.stream_consumers

  name              = "/aws/lambda/${local.name}-stream-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_security_group" "stream" {
  name        = "${local.name}-stream"
  description = "Stream-scoring Lambdas: no ingress, HTTPS out (Kinesis, S3, MLflow)"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "stream_https" {
  #checkov:skip=CKV_AWS_382:The functions call Kinesis, S3, SQS and the MLflow server, whose addresses are not fixed; only port 443 is open.
  security_group_id = aws_security_group.stream.id
  description       = "HTTPS to AWS APIs and the MLflow server"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# ---- one role per consumer: read its deployment's ride_events, write its own output stream, queue and dead letters

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "stream" {
  for_each = local.stream_consumers

  name               = "${local.name}-stream-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "stream" {
  #checkov:skip=CKV_AWS_111:Only the VPC network-interface calls Lambda makes for the function and X-Ray's trace writes are unscoped; neither has a resource type.
  #checkov:skip=CKV_AWS_356:Same statement: "Resource": "*" only for ec2:*NetworkInterface*/*PrivateIpAddresses and xray:Put*, which take no resource ARN.
  for_each = local.stream_consumers

  statement {
    sid = "ReadRideEvents"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.ride_events[each.value.deployment].arn]
  }

  statement {
    sid       = "ListStreamsForTheEventSourceMapping"
    actions   = ["kinesis:ListStreams"]
    resources = ["arn:${local.partition}:kinesis:${local.region}:${local.account_id}:stream/*"]
  }

  statement {
    sid       = "WriteItsOwnPredictions"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [each.value.output_stream.arn]
  }

  statement {
    sid       = "WriteItsOwnDeadLetters"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arns["predictions"]}/${local.stream_dead_letter_prefix}/${each.key}/*"]
  }

  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [local.bucket_arns["mlflow"], "${local.bucket_arns["mlflow"]}/*"]
  }

  statement {
    sid       = "SendFailedBatchesToItsQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.stream_on_failure[each.key].arn]
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.stream[each.key].arn}:*"]
  }

  statement {
    sid       = "UseStackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  # What AWSLambdaVPCAccessExecutionRole grants, and X-Ray: these calls take no resource ARN.
  statement {
    sid = "VpcNetworkInterfacesAndTracesHaveNoResourceScope"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "stream" {
  for_each = local.stream_consumers

  name   = "stream-${each.key}"
  role   = aws_iam_role.stream[each.key].id
  policy = data.aws_iam_policy_document.stream[each.key].json
}

# ---- functions and mappings ---------------------------------------------------------------------------------

resource "aws_lambda_function" "stream" {
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages; these functions run an image from an immutable-tag, scanned ECR repository.
  for_each = local.stream_consumers

  function_name = "${local.name}-stream-${each.key}"
  description   = "Scores ${each.value.deployment} ride events with models:/${each.value.model_name}@${each.value.alias} into ${each.value.output_stream.name}"
  role          = aws_iam_role.stream[each.key].arn
  package_type  = "Image"
  image_uri     = "${aws_ecr_repository.serving.repository_url}:${var.image_tag}"
  architectures = ["x86_64"]
  memory_size   = var.stream_lambda_memory_mb
  timeout       = var.stream_lambda_timeout_seconds
  kms_key_arn   = aws_kms_key.main.arn

  # One concurrent batch per shard is what the mapping uses; the ceiling keeps a reshard from starving the account.
  reserved_concurrent_executions = var.stream_lambda_max_concurrency

  # The serving image's CMD is the web service; as a function it runs the Lambda runtime interface client.
  image_config {
    entry_point = ["python", "-m", "awslambdaric"]
    command     = ["deploy_assets.serving.stream.lambda_handler.handler"]
  }

  environment {
    variables = {
      MLFLOW_TRACKING_URI                   = var.mlflow_tracking_uri
      DEPLOY_ASSETS_DEPLOYMENT_NAME         = each.value.deployment
      DEPLOY_ASSETS_MODEL_NAME              = each.value.model_name
      DEPLOY_ASSETS_DATASET                 = each.value.dataset
      DEPLOY_ASSETS_MISSING_ZONES           = each.value.missing_zones
      DEPLOY_ASSETS_MODEL_ALIAS             = each.value.alias
      DEPLOY_ASSETS_MODEL_REFRESH_SECONDS   = "60"
      DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM = each.value.output_stream.name
      DEPLOY_ASSETS_STREAM_DEAD_LETTER      = "s3://${local.buckets["predictions"].id}/${local.stream_dead_letter_prefix}/${each.key}"
    }
  }

  vpc_config {
    subnet_ids         = local.private_subnet_ids
    security_group_ids = [aws_security_group.stream.id]
  }

  tracing_config {
    mode = "Active"
  }

  # Asynchronous invocations only (the mapping invokes synchronously and has its own on-failure destination).
  dead_letter_config {
    target_arn = aws_sqs_queue.stream_on_failure[each.key].arn
  }

  depends_on = [aws_iam_role_policy.stream, aws_cloudwatch_log_group.stream, aws_ecr_repository_policy.serving]
}

resource "aws_lambda_event_source_mapping" "stream" {
  for_each = local.stream_consumers

  event_source_arn  = aws_kinesis_stream.ride_events[each.value.deployment].arn
  function_name     = aws_lambda_function.stream[each.key].arn
  starting_position = each.value.starting_position

  batch_size                         = var.stream_batch_size
  maximum_batching_window_in_seconds = var.stream_batching_window_seconds
  parallelization_factor             = 1 # one batch at a time per shard: ride events of a shard stay in order
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.stream_max_retry_attempts
  maximum_record_age_in_seconds      = var.stream_max_record_age_seconds

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_on_failure[each.key].arn
    }
  }
}
