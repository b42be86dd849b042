# One customer-managed key for the stack's data at rest: S3 buckets, Kinesis streams, CloudWatch log groups,
# RDS storage and its Secrets Manager master-password secret, ECR images.

resource "aws_kms_key" "main" {
  description             = "${local.name}: data at rest (S3, Kinesis, Logs, RDS, Secrets Manager, ECR)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

# In a key policy "Resource": "*" means "this key"; the account-root statement is AWS's default key policy and
# only delegates to IAM, where the roles of iam.tf grant narrow kms actions on this key's ARN.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy, not an identity policy: "*" is this key, and the root statement only delegates to IAM.
  #checkov:skip=CKV_AWS_111:Key policy, not an identity policy: "*" is this key, and the root statement only delegates to IAM.
  #checkov:skip=CKV_AWS_356:Key policy, not an identity policy: "Resource": "*" always means the key itself.
  statement {
    sid       = "AccountRootDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsOfThisAccount"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}
