# The network, created here unless an existing VPC is given (create_vpc = false): a fresh account applies the
# configuration without editing any identifier.
#
#   10.40.0.0/16 (var.vpc_cidr), two AZs
#     private subnets  ECS tasks (Dagster, web service), the stream Lambdas, RDS, the internal load balancer
#     public subnets   only the NAT gateways (no task gets a public address)
#   S3 through a gateway endpoint (no NAT charge for data), every other AWS API through the NAT gateways.
#   Flow logs of the whole VPC to an encrypted CloudWatch group; the default security group allows nothing.

data "aws_availability_zones" "available" {
  count = var.create_vpc ? 1 : 0
  state = "available"

  # A closed, named set: the subnets never move when AWS adds a zone.
  filter {
    name   = "zone-name"
    values = [for suffix in var.availability_zone_suffixes : "${var.aws_region}${suffix}"]
  }
}

data "aws_vpc" "given" {
  count = var.create_vpc ? 0 : 1
  id    = var.vpc_id
}

locals {
  azs = var.create_vpc ? data.aws_availability_zones.available[0].names : []

  vpc_id             = var.create_vpc ? aws_vpc.main[0].id : var.vpc_id
  vpc_cidr           = var.create_vpc ? aws_vpc.main[0].cidr_block : data.aws_vpc.given[0].cidr_block
  private_subnet_ids = var.create_vpc ? aws_subnet.private[*].id : var.private_subnet_ids
  nat_gateway_count  = var.create_vpc ? (var.nat_gateway_per_az ? length(local.azs) : 1) : 0
}

resource "aws_vpc" "main" {
  count = var.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

# Adopted and emptied: nothing may use the default group by accident.
resource "aws_default_security_group" "main" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.main[0].id
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.main[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-private-${local.azs[count.index]}" }
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id                  = aws_vpc.main[0].id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 4, 8 + count.index)
  map_public_ip_on_launch = false # only the NAT gateways live here, with their own Elastic IPs

  tags = { Name = "${local.name}-public-${local.azs[count.index]}" }
}

resource "aws_internet_gateway" "main" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.main[0].id
}

resource "aws_eip" "nat" {
  count  = local.nat_gateway_count
  domain = "vpc"

  depends_on = [aws_internet_gateway.main]
}

resource "aws_nat_gateway" "main" {
  count = local.nat_gateway_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
}

resource "aws_route_table" "public" {
  count  = var.create_vpc ? 1 : 0
  vpc_id = aws_vpc.main[0].id
}

resource "aws_route" "public_internet" {
  count = var.create_vpc ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main[0].id
}

resource "aws_route_table_association" "public" {
  count = length(local.azs)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table" "private" {
  count  = length(local.azs)
  vpc_id = aws_vpc.main[0].id
}

resource "aws_route" "private_nat" {
  count = length(local.azs)

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main[min(count.index, local.nat_gateway_count - 1)].id
}

resource "aws_route_table_association" "private" {
  count = length(local.azs)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

resource "aws_vpc_endpoint" "s3" {
  count = var.create_vpc ? 1 : 0

  vpc_id            = aws_vpc.main[0].id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
}

# ---- flow logs --------------------------------------------------------------------------------------------

resource "aws_flow_log" "vpc" {
  count = var.create_vpc ? 1 : 0

  vpc_id               = aws_vpc.main[0].id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count = var.create_vpc ? 1 : 0

  name              = "/vpc/${local.name}/flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count = var.create_vpc ? 1 : 0

  name               = "${local.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [for group in aws_cloudwatch_log_group.flow_logs : "${group.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count = var.create_vpc ? 1 : 0

  name   = "flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs.json
}
