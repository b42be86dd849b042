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

# ---- network: a VPC created here (default), or an existing one with private subnets ------------------------

variable "create_vpc" {
  description = "Create the VPC (two AZs: private subnets for every task, function and the database; public subnets holding only the NAT gateways). false: use vpc_id and private_subnet_ids."
  type        = bool
  default     = true

  validation {
    condition     = var.create_vpc || (var.vpc_id != null && length(var.private_subnet_ids) >= 2)
    error_message = "With create_vpc = false, set vpc_id and at least two private_subnet_ids (in different AZs: RDS needs two)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC created when create_vpc is true (split into /20 subnets)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zone_suffixes" {
  description = "Zones of the created VPC, as suffixes of aws_region (two or more; RDS needs two)."
  type        = list(string)
  default     = ["a", "b"]

  validation {
    condition     = length(var.availability_zone_suffixes) >= 2
    error_message = "At least two availability zones."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per AZ (resilient) instead of one shared (cheaper). Only with create_vpc."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC (only with create_vpc = false), with a NAT gateway or VPC endpoints for the AWS APIs."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Private subnets of vpc_id (only with create_vpc = false), at least two, in different AZs."
  type        = list(string)
  default     = []
}

variable "allowed_cidr_blocks" {
  description = "CIDR blocks allowed to reach the Dagster UI load balancer (read-only UI, and the editors' sign-in listener), e.g. the VPN range. Empty: no ingress at all (reach it with ECS Exec / SSM port forwarding)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : !contains(["0.0.0.0/0", "::/0"], cidr)])
    error_message = "The read-only Dagster UI has no login of its own: it must never be open to the internet (0.0.0.0/0 or ::/0)."
  }
}

# ---- the Dagster UI: read-only for everyone allowed, editing for the people the identity provider signs in ----

variable "dagster_certificate_arn" {
  description = "ACM certificate of the Dagster UI load balancer (HTTPS). null: the read-only UI over HTTP inside the VPC, and no editors' listener (the ALB authenticates on HTTPS only)."
  type        = string
  default     = null
}

variable "dagster_oidc" {
  description = "OpenID Connect provider the editors sign in with on the Dagster load balancer's :8443 listener (authenticate-oidc); client_secret_arn is a Secrets Manager secret holding the client secret. Assign the client only to the people who may change things. null: no editing UI behind the load balancer."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret_arn      = string
  })
  default = null

  validation {
    condition     = var.dagster_oidc == null || var.dagster_certificate_arn != null
    error_message = "dagster_oidc needs dagster_certificate_arn: the load balancer authenticates on HTTPS listeners only."
  }
}

# ---- notifications -----------------------------------------------------------------------------------------

variable "alert_emails" {
  description = "Addresses subscribed (by email) to the alerts topic: failed runs and overdue predictions."
  type        = list(string)
  default     = []
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
  description = "Retention of every deployment's ride_events / ride_predictions streams (hours, 24-8760)."
  type        = number
  default     = 24
}

# ---- online serving: the stream Lambdas and the web service ------------------------------------------------

variable "deployments" {
  description = "The model deployments served online, by name (deploy_assets/defs/<name>/defs.yaml): each gets its own Kinesis streams (ride_events, ride_predictions, ride_predictions_shadow), champion and shadow stream Lambdas, and web service behind the shared internal load balancer at /deployments/<name>/. model_name: the registered MLflow model it serves (DEPLOY_ASSETS_MODEL_NAME); dataset and missing_zones: its rides as its defs.yaml declares them (DEPLOY_ASSETS_DATASET: FHV requests have no trip_distance; DEPLOY_ASSETS_MISSING_ZONES: keep accepts zone -1). Names: lower-case letters, digits and underscores, starting with a letter."
  type = map(object({
    model_name    = string
    dataset       = optional(string, "yellow")
    missing_zones = optional(string, "drop")
  }))
  default = {
    yellow = { model_name = "trip-duration" }
    green  = { model_name = "green-trip-duration", dataset = "green" }
    fhv    = { model_name = "fhv-trip-duration", dataset = "fhv", missing_zones = "keep" }
  }

  validation {
    condition     = length(var.deployments) > 0 && alltrue([for name in keys(var.deployments) : can(regex("^[a-z][a-z0-9_]*$", name))])
    error_message = "At least one deployment; each name lower-case letters, digits and underscores, starting with a letter (as in deploy_assets/defs/<name>)."
  }

  # The longest names built from a deployment's: the function and role "<project>-<environment>-stream-<name>-champion"
  # (Lambda and IAM allow 64 characters). Target group names (32) are shortened with a hash when too long (web.tf).
  validation {
    condition     = alltrue([for name in keys(var.deployments) : length("${var.project}-${var.environment}-stream-${name}-champion") <= 64])
    error_message = "A deployment name is too long: \"<project>-<environment>-stream-<name>-champion\" (a Lambda function and IAM role name) must fit in 64 characters."
  }

  validation {
    condition     = alltrue([for deployment in values(var.deployments) : length(trimspace(deployment.model_name)) > 0])
    error_message = "Every deployment needs a model_name (the registered MLflow model)."
  }

  validation {
    condition     = alltrue([for deployment in values(var.deployments) : contains(["yellow", "green", "fhv", "fhvhv"], deployment.dataset) && contains(["drop", "keep"], deployment.missing_zones)])
    error_message = "A deployment's dataset is yellow, green, fhv or fhvhv, and its missing_zones drop or keep (as in its defs.yaml)."
  }
}

variable "shadow_model_alias" {
  description = "Registry alias the shadow stream consumer scores with (into ride_predictions_shadow)."
  type        = string
  default     = "challenger"
}

variable "stream_batch_size" {
  description = "Most records per Lambda invocation (event source mapping BatchSize)."
  type        = number
  default     = 500
}

variable "stream_batching_window_seconds" {
  description = "Longest wait to fill a batch (MaximumBatchingWindowInSeconds): the latency a quiet stream adds."
  type        = number
  default     = 1
}

variable "stream_max_retry_attempts" {
  description = "Retries of a failing batch (halved each time by bisect-on-error) before it goes to the on-failure queue."
  type        = number
  default     = 5
}

variable "stream_max_record_age_seconds" {
  description = "Records older than this are sent to the on-failure queue instead of being scored."
  type        = number
  default     = 3600
}

variable "stream_lambda_memory_mb" {
  description = "Memory (and so CPU) of each stream-scoring function."
  type        = number
  default     = 1024
}

variable "stream_lambda_timeout_seconds" {
  description = "Timeout of one invocation (one batch)."
  type        = number
  default     = 60
}

variable "stream_lambda_max_concurrency" {
  description = "Reserved concurrency of each function (the mapping runs one batch per shard at a time)."
  type        = number
  default     = 20
}

variable "web_task_size" {
  description = "Fargate CPU units and memory (MiB) of one prediction-service task."
  type = object({
    cpu    = number
    memory = number
  })
  default = { cpu = 512, memory = 1024 }
}

variable "web_min_count" {
  description = "Fewest prediction-service tasks (two spread over the AZs)."
  type        = number
  default     = 2
}

variable "web_max_count" {
  description = "Most prediction-service tasks the autoscaler may run."
  type        = number
  default     = 10
}

variable "web_requests_per_target" {
  description = "Target tracking: requests per task per minute the autoscaler aims for."
  type        = number
  default     = 3000
}

variable "web_api_key" {
  description = "Callers of the prediction service must send a key (X-API-Key), generated into Secrets Manager. false: anyone who reaches the internal load balancer scores."
  type        = bool
  default     = true
}

variable "web_certificate_arn" {
  description = "ACM certificate for an HTTPS listener on the internal load balancer (then port 80 only redirects). null: HTTP inside the VPC."
  type        = string
  default     = null
}

# ---- emulators --------------------------------------------------------------------------------------------

variable "excluded_resources" {
  description = "Parts of the stack not to create, ONLY for an AWS emulator that lacks their APIs (the apply test against moto; the list and each reason: deploy_assets_tests/test_terraform_apply.py, EMULATOR_GAPS). Always empty on AWS."
  type        = set(string)
  default     = []

  validation {
    condition     = length(setsubtract(var.excluded_resources, ["web_autoscaling"])) == 0
    error_message = "excluded_resources may only name: web_autoscaling."
  }
}
