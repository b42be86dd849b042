# Two images from one Dockerfile: `code` (target runtime: Dagster, the code location and every run) and `serving`
# (target serving: the slim online runtime, the web service and the stream Lambdas, no Dagster).
resource "aws_ecr_repository" "code" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "code" {
  for_each   = { code = aws_ecr_repository.code.name, serving = aws_ecr_repository.serving.name }
  repository = each.value
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecr_repository" "serving" {
  name                 = "${local.name}-serving"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

# Lambda pulls a function's image with its service principal, only for this account's functions.
data "aws_iam_policy_document" "serving_repository" {
  statement {
    sid     = "LambdaPullsTheFunctionImage"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = ["arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.name}-*"]
    }
  }
}

resource "aws_ecr_repository_policy" "serving" {
  repository = aws_ecr_repository.serving.name
  policy     = data.aws_iam_policy_document.serving_repository.json
}
