# Defaults are the secure, production-shaped values (checkov scans the defaults); envs/stg.tfvars relaxes the
# ones that only cost money in staging (multi-AZ, deletion protection, log retention).

variable "aws_region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-east-1"
}

variable "project" {
  description = "Prefix of every resource name."
  type        = string
  default     = "deploy-assets"
}

variable "environment" {
  description = "Deployment environment: stg or prod."
  type        = string

  validation {
    condition     = contains(["stg", "prod"], var.environment)
    error_message = "environment must be \"stg\" or \"prod\"."
  }
}

# ---- network: an existing VPC with private subnets (and a NAT gateway or VPC endpoints for AWS APIs) -------

variable "vpc_id" {
  description = "VPC that hosts the ECS tasks and the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different AZs) for the ECS tasks and the RDS subnet group."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "RDS needs private subnets in at least two availability zones."
  }
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to reach the Dagster webserver (port 3000), e.g. the VPN range. Empty: no ingress at all (reach it with ECS Exec / SSM port forwarding)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : !contains(["0.0.0.0/0", "::/0"], cidr)])
    error_message = "The webserver has no authentication: it must never be open to the internet (0.0.0.0/0 or ::/0)."
  }
}

# ---- images and application settings -----------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the deploy_assets image in this stack's ECR repository (tags are immutable: use the git SHA)."
  type        = string
}

variable "mlflow_tracking_uri" {
  description = "MLFLOW_TRACKING_URI for the code location and the runs (an MLflow tracking server reachable from the VPC over HTTPS)."
  type        = string
}

variable "extra_environment" {
  description = "More environment variables for the code location and the run workers (e.g. DEPLOY_ASSETS_PREDICTIONS_DB). Never put secrets here."
  type        = map(string)
  default     = {}
}

variable "task_sizes" {
  description = "Fargate CPU units and memory (MiB) per task family."
  type = map(object({
    cpu    = number
    memory = number
  }))
  default = {
    webserver     = { cpu = 512, memory = 1024 }
    daemon        = { cpu = 512, memory = 1024 }
    code_location = { cpu = 512, memory = 2048 }
    run           = { cpu = 1024, memory = 4096 }
  }
}

variable "webserver_desired_count" {
  description = "Webserver tasks (stateless; more than one is fine)."
  type        = number
  default     = 1
}

variable "code_location_desired_count" {
  description = "Code-location (gRPC) tasks."
  type        = number
  default     = 1
}

# ---- database -------------------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class of the Dagster metadata database."
  type        = string
  default     = "db.t4g.small"
}

variable "db_engine_version" {
  description = "PostgreSQL major version (minor versions are upgraded automatically)."
  type        = string
  default     = "16"
}

variable "db_allocated_storage" {
  description = "Initial storage (GiB)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "Standby replica in a second AZ."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Automated backup retention (days)."
  type        = number
  default     = 14
}

variable "db_performance_insights" {
  description = "Performance Insights (not offered on the smallest instance classes)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protects the database (and keeps a final snapshot) against terraform destroy."
  type        = bool
  default     = true
}

# ---- retention ------------------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "CloudWatch Logs retention for every log group of the stack."
  type        = number
  default     = 365
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which S3 deletes overwritten/deleted object versions."
  type        = number
  default     = 90
}

variable "compute_log_expiration_days" {
  description = "Days after which Dagster's captured step logs (compute logs) are deleted."
  type        = number
  default     = 90
}

variable "access_log_expiration_days" {
  description = "Days after which S3 server access logs are deleted."
  type        = number
  default     = 365
}

variable "kinesis_retention_hours" {
  description = "Retention of the ride_events / ride_predictions streams (hours, 24-8760)."
  type        = number
  default     = 24
}
