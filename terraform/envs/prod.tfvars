# terraform -chdir=terraform plan -var-file=envs/prod.tfvars
environment = "prod"
aws_region  = "us-east-1"

vpc_id             = "vpc-REPLACE"
private_subnet_ids = ["subnet-REPLACE-a", "subnet-REPLACE-b", "subnet-REPLACE-c"]

allowed_cidr_blocks = ["10.0.0.0/16"]

image_tag           = "REPLACE-git-sha"
mlflow_tracking_uri = "https://mlflow.example.internal"

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
