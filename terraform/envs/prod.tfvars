# terraform -chdir=terraform plan -var-file=envs/prod.tfvars
environment = "prod"
aws_region  = "us-east-1"

# The VPC is created by the configuration (create_vpc defaults to true); to use an existing one instead:
#   create_vpc = false, vpc_id = "vpc-…", private_subnet_ids = ["subnet-…", "subnet-…"]

allowed_cidr_blocks = ["10.0.0.0/16"]

# image_tag and mlflow_tracking_uri are given on the command line (README, "Deploy to AWS").

db_instance_class        = "db.t4g.medium"
db_multi_az              = true
db_backup_retention_days = 14
deletion_protection      = true
log_retention_days       = 365

webserver_desired_count     = 2
code_location_desired_count = 2

task_sizes = {
  webserver     = { cpu = 512, memory = 1024 }
  daemon        = { cpu = 512, memory = 1024 }
  code_location = { cpu = 1024, memory = 2048 }
  run           = { cpu = 2048, memory = 8192 }
}
