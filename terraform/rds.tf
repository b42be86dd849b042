# Dagster's run, event-log and schedule storage. Private, encrypted, TLS-only; the master password is generated
# and rotated by RDS in Secrets Manager (manage_master_user_password) and injected into the tasks by ECS.

locals {
  db_identifier = "${local.name}-dagster"
  db_name       = "dagster"
  db_username   = "dagster"
}

resource "aws_db_subnet_group" "dagster" {
  name       = local.db_identifier
  subnet_ids = local.private_subnet_ids
}

resource "aws_db_parameter_group" "dagster" {
  name_prefix = "${local.db_identifier}-"
  family      = "postgres${var.db_engine_version}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "dagster" {
  #checkov:skip=CKV_AWS_118:Enhanced monitoring needs its own IAM role; Performance Insights and CloudWatch metrics cover this small metadata database.
  identifier     = local.db_identifier
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name                       = local.db_name
  username                      = local.db_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.main.key_id

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  db_subnet_group_name   = aws_db_subnet_group.dagster.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.dagster.name

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  backup_retention_period             = var.db_backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = "${local.db_identifier}-final"

  performance_insights_enabled          = var.db_performance_insights
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = 7
  enabled_cloudwatch_logs_exports       = local.rds_log_exports

  depends_on = [aws_cloudwatch_log_group.rds]
}
