# Data buckets, each a modules/s3_bucket (private, KMS-encrypted, versioned, TLS-only, access-logged, events to
# EventBridge):
#   landing      raw monthly TLC files; every upload is an EventBridge event (the Dagster sensor polls as well)
#   predictions  stored assets (the warehouse prefix) and the monthly prediction Parquet files
#   mlflow       MLflow model artifacts
#   dagster      Dagster compute logs (captured stdout/stderr of every step), expired after a while
# plus `access_logs`, the target of S3 server access logging for the four above.

module "landing_bucket" {
  source = "./modules/s3_bucket"

  name                               = "${local.bucket_prefix}-landing"
  kms_key_arn                        = aws_kms_key.main.arn
  access_log_bucket                  = aws_s3_bucket_policy.access_logs.bucket # after the policy that lets S3 deliver logs
  access_log_prefix                  = "landing/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
}

module "predictions_bucket" {
  source = "./modules/s3_bucket"

  name                               = "${local.bucket_prefix}-predictions"
  kms_key_arn                        = aws_kms_key.main.arn
  access_log_bucket                  = aws_s3_bucket_policy.access_logs.bucket # after the policy that lets S3 deliver logs
  access_log_prefix                  = "predictions/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
}

module "mlflow_bucket" {
  source = "./modules/s3_bucket"

  name                               = "${local.bucket_prefix}-mlflow"
  kms_key_arn                        = aws_kms_key.main.arn
  access_log_bucket                  = aws_s3_bucket_policy.access_logs.bucket # after the policy that lets S3 deliver logs
  access_log_prefix                  = "mlflow/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
}

module "dagster_bucket" {
  source = "./modules/s3_bucket"

  name                               = "${local.bucket_prefix}-dagster"
  kms_key_arn                        = aws_kms_key.main.arn
  access_log_bucket                  = aws_s3_bucket_policy.access_logs.bucket # after the policy that lets S3 deliver logs
  access_log_prefix                  = "dagster/"
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  expire_current_days                = var.compute_log_expiration_days
}

locals {
  bucket_prefix = "${local.name}-${local.account_id}"
  bucket_roles  = ["landing", "predictions", "mlflow", "dagster"]
  buckets = {
    landing     = module.landing_bucket
    predictions = module.predictions_bucket
    mlflow      = module.mlflow_bucket
    dagster     = module.dagster_bucket
  }
}

# ---- access-log bucket ----------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Access logs are not replicated cross-region; they are audit data, not application data.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the access-log bucket.
  #checkov:skip=CKV_AWS_145:S3 server access logging can only deliver to SSE-S3 (AES256) buckets, not SSE-KMS.
  bucket = "${local.bucket_prefix}-access-logs"
  # S3 keeps writing access logs here until the logged buckets are gone: without deletion protection (staging),
  # `terraform destroy` must be able to empty it. Protected stacks keep their audit trail.
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.access_log_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

# Elastic Load Balancing writes the web load balancer's access logs as the region's ELB account.
data "aws_elb_service_account" "main" {}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "WebLoadBalancerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/web-alb/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.main.arn]
    }
  }

  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      # From the names, not the module outputs: the modules' logging waits for this policy.
      values = [for role in local.bucket_roles : "arn:${local.partition}:s3:::${local.bucket_prefix}-${role}"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
