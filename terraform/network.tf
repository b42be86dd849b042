# Everything runs in the private subnets of an existing VPC. Security groups, least reach first:
#   webserver      both Dagster webservers: ingress 3000 only from the Dagster load balancer (dagster_ui.tf), which
#                  takes var.allowed_cidr_blocks (default: none)
#   daemon         no ingress; also the group of every run task (the EcsRunLauncher copies the daemon's network)
#   code_location  ingress 4000 (gRPC) only from the webserver and the daemon
#   database       ingress 5432 only from the four Dagster groups
# Egress: 443 for AWS APIs (S3, ECR, Logs, Kinesis, Secrets Manager, MLflow over HTTPS), 5432 to the database,
# 4000 to the code location.

resource "aws_security_group" "webserver" {
  name        = "${local.name}-webserver"
  description = "Dagster webservers: reachable only from the Dagster UI load balancer"
  vpc_id      = local.vpc_id
}

resource "aws_security_group" "daemon" {
  name        = "${local.name}-daemon"
  description = "Dagster daemon and the run tasks it launches: no ingress"
  vpc_id      = local.vpc_id
}

resource "aws_security_group" "code_location" {
  name        = "${local.name}-code-location"
  description = "Dagster code location gRPC server"
  vpc_id      = local.vpc_id
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "Dagster Postgres: reachable only from the Dagster tasks"
  vpc_id      = local.vpc_id
}

locals {
  dagster_security_groups = {
    webserver     = aws_security_group.webserver.id
    daemon        = aws_security_group.daemon.id
    code_location = aws_security_group.code_location.id
  }
}

# ---- ingress ----------------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "code_location_from_dagster" {
  for_each = {
    webserver = aws_security_group.webserver.id
    daemon    = aws_security_group.daemon.id
  }

  security_group_id            = aws_security_group.code_location.id
  description                  = "gRPC from the Dagster ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 4000
  to_port                      = 4000
}

resource "aws_vpc_security_group_ingress_rule" "database_from_dagster" {
  for_each = local.dagster_security_groups

  security_group_id            = aws_security_group.database.id
  description                  = "Postgres from the Dagster ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# ---- egress -----------------------------------------------------------------------------------------------

resource "aws_vpc_security_group_egress_rule" "https" {
  #checkov:skip=CKV_AWS_382:Tasks call AWS APIs (S3, ECR, Logs, Kinesis, Secrets Manager) whose addresses are not fixed; only port 443 is open.
  for_each = local.dagster_security_groups

  security_group_id = each.value
  description       = "HTTPS to AWS APIs and the MLflow server"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "to_database" {
  for_each = local.dagster_security_groups

  security_group_id            = each.value
  description                  = "Postgres"
  referenced_security_group_id = aws_security_group.database.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "to_code_location" {
  for_each = {
    webserver = aws_security_group.webserver.id
    daemon    = aws_security_group.daemon.id
  }

  security_group_id            = each.value
  description                  = "gRPC to the code location"
  referenced_security_group_id = aws_security_group.code_location.id
  ip_protocol                  = "tcp"
  from_port                    = 4000
  to_port                      = 4000
}
