# terraform -chdir=terraform plan -var-file=envs/stg.tfvars
environment = "stg"
aws_region  = "us-east-1"

# An existing VPC with private subnets in two AZs (NAT gateway or VPC endpoints for ECR, S3, Logs, Secrets Manager, Kinesis).
vpc_id             = "vpc-REPLACE"
private_subnet_ids = ["subnet-REPLACE-a", "subnet-REPLACE-b"]

# Webserver reachable from the VPN only. Never 0.0.0.0/0 (rejected by a validation).
allowed_cidr_blocks = ["10.0.0.0/16"]

image_tag           = "REPLACE-git-sha"
mlflow_tracking_uri = "https://mlflow.stg.example.internal"

# Staging trades resilience for cost.
db_instance_class        = "db.t4g.micro"
db_multi_az              = false
db_performance_insights  = false
db_backup_retention_days = 3
deletion_protection      = false
log_retention_days       = 30

task_sizes = {
  webserver     = { cpu = 256, memory = 512 }
  daemon        = { cpu = 256, memory = 512 }
  code_location = { cpu = 512, memory = 1024 }
  run           = { cpu = 1024, memory = 4096 }
}
