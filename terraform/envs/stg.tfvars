# terraform -chdir=terraform plan -var-file=envs/stg.tfvars
environment = "stg"
aws_region  = "us-east-1"

# The VPC is created by the configuration (create_vpc defaults to true); to use an existing one instead:
#   create_vpc = false, vpc_id = "vpc-…", private_subnet_ids = ["subnet-…", "subnet-…"]

# Webserver reachable from the VPN only. Never 0.0.0.0/0 (rejected by a validation).
allowed_cidr_blocks = ["10.0.0.0/16"]

# image_tag and mlflow_tracking_uri are given on the command line (README, "Deploy to AWS").

# Staging trades resilience for cost.
nat_gateway_per_az       = false
web_min_count            = 1
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
