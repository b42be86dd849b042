# Least-privilege roles. No statement grants "*" actions; "Resource": "*" appears only for the read-only calls
# AWS does not scope to resources (listed, with their reason, in deploy_assets_tests/test_terraform_static.py):
#   ecr:GetAuthorizationToken, ecs:DescribeTaskDefinition, ec2:DescribeNetworkInterfaces.
#
#   execution      the ECS agent: pull the image, write the task's logs, read the database password secret
#   control_plane  webserver + daemon: Dagster's EcsRunLauncher (run/stop/describe tasks of the run family in
#                  this cluster, pass only the run and execution roles) and compute logs
#   code_location  the gRPC server: sensors read the landing bucket and publish alerts; read access to the other data
#   webserver_readonly  the read-only webserver: read compute logs
#   run            run workers: read landing, write predictions/warehouse and MLflow artifacts, compute logs
# The online services have roles of their own: web.tf (web, shared by every deployment's web service: read model
# artifacts) and lambda.tf (one per stream consumer, i.e. per deployment and kind: read its deployment's
# ride_events, write its own output stream, dead letters and on-failure queue).

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

locals {
  bucket_arns        = { for key, bucket in local.buckets : key => bucket.arn }
  task_arn_pattern   = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.cluster_name}/*"
  run_task_def_arn   = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.run_family}:*"
  cluster_arn        = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:cluster/${local.cluster_name}"
  ecs_log_group_arns = [for group in aws_cloudwatch_log_group.ecs : "${group.arn}:*"]
}

# ---- execution role (ECS agent) -------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${local.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuthorizationTokenHasNoResource"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.code.arn, aws_ecr_repository.serving.arn]
  }

  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = concat(local.ecs_log_group_arns, [for group in aws_cloudwatch_log_group.web : "${group.arn}:*"])
  }

  statement {
    sid       = "ReadTaskSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat([aws_db_instance.dagster.master_user_secret[0].secret_arn], aws_secretsmanager_secret.web_api_key[*].arn)
  }

  statement {
    sid       = "DecryptWithStackKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ---- control plane: webserver + daemon (EcsRunLauncher) -------------------------------------------------

resource "aws_iam_role" "control_plane" {
  name               = "${local.name}-dagster-control-plane"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "control_plane" {
  statement {
    sid       = "RunTasksOfTheRunFamilyInThisCluster"
    actions   = ["ecs:RunTask"]
    resources = [local.run_task_def_arn]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "TagTheRunTasksItStarts"
    actions   = ["ecs:TagResource"]
    resources = [local.task_arn_pattern]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  statement {
    sid       = "WatchAndStopTasksInThisCluster"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.task_arn_pattern]
  }

  # Neither call supports resource-level permissions. The launcher resolves the run task definition by family
  # and copies its own task's subnets/security groups from its network interface.
  statement {
    sid       = "ReadOnlyCallsWithoutResourceScope"
    actions   = ["ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"]
    resources = ["*"]
  }

  statement {
    sid       = "PassOnlyTheRunRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.run.arn, aws_iam_role.execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ListComputeLogs"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns["dagster"]]
  }

  statement {
    sid       = "ReadWriteComputeLogs"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arns["dagster"]}/*"]
  }

  statement {
    sid       = "UseStackKeyForS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "control_plane" {
  name   = "dagster-control-plane"
  role   = aws_iam_role.control_plane.id
  policy = data.aws_iam_policy_document.control_plane.json
}

# ---- code location (gRPC server: definitions, sensors, schedules) ---------------------------------------

resource "aws_iam_role" "code_location" {
  name               = "${local.name}-code-location"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "code_location" {
  statement {
    sid       = "ListDataBuckets"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns["landing"], local.bucket_arns["predictions"], local.bucket_arns["mlflow"]]
  }

  statement {
    sid       = "ReadData"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns["landing"]}/*", "${local.bucket_arns["predictions"]}/*", "${local.bucket_arns["mlflow"]}/*"]
  }

  statement {
    sid       = "WriteSensorComputeLogs"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arns["dagster"]}/*"]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "UseStackKeyForS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "code_location" {
  name   = "code-location"
  role   = aws_iam_role.code_location.id
  policy = data.aws_iam_policy_document.code_location.json
}

# ---- run workers ----------------------------------------------------------------------------------------

resource "aws_iam_role" "run" {
  name               = "${local.name}-dagster-run"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "run" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = values(local.bucket_arns)
  }

  statement {
    sid       = "ReadLanding"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns["landing"]}/*"]
  }

  # Predictions are replaced atomically (write, copy, delete); MLflow writes artifacts; steps write compute logs.
  statement {
    sid     = "ReadWriteOutputs"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [
      "${local.bucket_arns["predictions"]}/*",
      "${local.bucket_arns["mlflow"]}/*",
      "${local.bucket_arns["dagster"]}/*",
    ]
  }

  statement {
    sid       = "UseStackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "run" {
  name   = "dagster-run"
  role   = aws_iam_role.run.id
  policy = data.aws_iam_policy_document.run.json
}

# ---- read-only webserver: shows runs and their logs, launches nothing -----------------------------------

resource "aws_iam_role" "webserver_readonly" {
  name               = "${local.name}-dagster-webserver-readonly"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "webserver_readonly" {
  statement {
    sid       = "ListComputeLogs"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns["dagster"]]
  }

  statement {
    sid       = "ReadComputeLogs"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arns["dagster"]}/*"]
  }

  statement {
    sid       = "DecryptWithStackKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "webserver_readonly" {
  name   = "dagster-webserver-readonly"
  role   = aws_iam_role.webserver_readonly.id
  policy = data.aws_iam_policy_document.webserver_readonly.json
}
