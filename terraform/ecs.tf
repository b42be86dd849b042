# Dagster on ECS Fargate, one image (var.image_tag in this stack's ECR repository), five task families:
#   webserver      service, port 3000, behind the Dagster load balancer's sign-in listener (dagster_ui.tf)
#   webserver-readonly  service, port 3000, `dagster-webserver --read-only`: what everyone else opens
#   daemon         service, exactly one task; launches every run as a task of the `run` family (EcsRunLauncher)
#   code_location  service, gRPC on port 4000, named `code-location` in the Service Connect namespace
#   run            no service: the daemon starts one task per run (deploy/dagster.prod.yaml, run_launcher)
# Every container: non-root user (image), read-only root filesystem with a writable /tmp bind mount,
# logs to an encrypted CloudWatch group, DAGSTER_PG_PASSWORD from the RDS-managed secret.

locals {
  image        = "${aws_ecr_repository.code.repository_url}:${var.image_tag}"
  cluster_name = local.name
  run_family   = "${local.name}-run"
  workspace    = "/opt/dagster/workspace.yaml"

  # What deploy/dagster.prod.yaml reads. Every Dagster process loads the same instance (run workers and the
  # code server too, for sensor and run contexts), so every container gets all of it.
  dagster_environment = {
    AWS_REGION                  = local.region
    AWS_DEFAULT_REGION          = local.region
    DAGSTER_PG_HOST             = aws_db_instance.dagster.address
    DAGSTER_PG_PORT             = tostring(aws_db_instance.dagster.port)
    DAGSTER_PG_USERNAME         = local.db_username
    DAGSTER_PG_DB               = local.db_name
    DAGSTER_ECS_CLUSTER         = local.cluster_name
    DAGSTER_RUN_TASK_DEFINITION = local.run_family
    DAGSTER_COMPUTE_LOGS_BUCKET = local.buckets["dagster"].id
    DAGSTER_COMPUTE_LOGS_PREFIX = "compute-logs"
  }

  # What deploy_assets/settings.py reads: where the data lives. Each deployment's predictions go under
  # <data>/predictions/<name> (its own prefix), in the predictions bucket; the deployments' tables live in the
  # RDS database, whose password reaches libpq as PGPASSWORD (a secret below), never in the URL.
  code_environment = merge(
    {
      DEPLOY_ASSETS_DATA_URI         = "s3://${local.buckets["predictions"].id}"
      DEPLOY_ASSETS_LANDING_URI      = "s3://${local.buckets["landing"].id}/landing"
      DEPLOY_ASSETS_WAREHOUSE_URI    = "s3://${local.buckets["predictions"].id}/warehouse"
      DEPLOY_ASSETS_MLFLOW_ARTIFACTS = "s3://${local.buckets["mlflow"].id}/artifacts"
      DEPLOY_ASSETS_PREDICTIONS_DB   = "postgresql://${local.db_username}@${aws_db_instance.dagster.address}:${aws_db_instance.dagster.port}/${local.db_name}?sslmode=require"
      MLFLOW_TRACKING_URI            = var.mlflow_tracking_uri
      # Failed runs and overdue predictions (deploy_assets/notifications.py, run by the code location's sensors)
      DEPLOY_ASSETS_ALERT_SNS_TOPIC_ARN = aws_sns_topic.alerts.arn
      DEPLOY_ASSETS_DEPLOYMENT          = local.name
      DEPLOY_ASSETS_DAGSTER_URL         = local.dagster_ui_url
    },
    var.extra_environment,
  )

  dagster_secrets = [
    { name = "DAGSTER_PG_PASSWORD", valueFrom = "${aws_db_instance.dagster.master_user_secret[0].secret_arn}:password::" },
    { name = "PGPASSWORD", valueFrom = "${aws_db_instance.dagster.master_user_secret[0].secret_arn}:password::" },
  ]

  containers = {
    webserver = {
      command     = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", local.workspace]
      environment = local.dagster_environment
      ports       = [{ name = "http", containerPort = 3000, protocol = "tcp", appProtocol = "http" }]
      healthCheck = null
    }
    webserver-readonly = {
      command     = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", local.workspace, "--read-only"]
      environment = local.dagster_environment
      ports       = [{ name = "http", containerPort = 3000, protocol = "tcp", appProtocol = "http" }]
      healthCheck = null
    }
    daemon = {
      command     = ["dagster-daemon", "run", "-w", local.workspace]
      environment = local.dagster_environment
      ports       = []
      healthCheck = null
    }
    code-location = {
      command     = null # the image's CMD: dagster code-server start -h 0.0.0.0 -p 4000 -m deploy_assets.definitions
      environment = merge(local.dagster_environment, local.code_environment)
      ports       = [{ name = "grpc", containerPort = 4000, protocol = "tcp", appProtocol = "grpc" }]
      healthCheck = {
        command     = ["CMD", "dagster", "api", "grpc-health-check", "-p", "4000"]
        interval    = 30
        timeout     = 10
        retries     = 3
        startPeriod = 120
      }
    }
    run = {
      command     = null # set per run by the EcsRunLauncher (dagster api execute_run ...)
      environment = merge(local.dagster_environment, local.code_environment)
      ports       = []
      healthCheck = null
    }
  }

  container_definitions = {
    for key, c in local.containers : key => jsonencode([{
      # The EcsRunLauncher overrides the command of the container named `run` (container_name in dagster.prod.yaml).
      name                   = key
      image                  = local.image
      essential              = true
      command                = c.command
      portMappings           = c.ports
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      environment            = [for name, value in c.environment : { name = name, value = value }]
      secrets                = local.dagster_secrets
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      healthCheck            = c.healthCheck
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.ecs[key].name
          awslogs-region        = local.region
          awslogs-stream-prefix = key
        }
      }
    }])
  }

  task_roles = {
    webserver          = aws_iam_role.control_plane.arn
    webserver-readonly = aws_iam_role.webserver_readonly.arn
    daemon             = aws_iam_role.control_plane.arn
    code-location      = aws_iam_role.code_location.arn
    run                = aws_iam_role.run.arn
  }
  task_sizes = {
    webserver          = var.task_sizes["webserver"]
    webserver-readonly = var.task_sizes["webserver"]
    daemon             = var.task_sizes["daemon"]
    code-location      = var.task_sizes["code_location"]
    run                = var.task_sizes["run"]
  }
}

resource "aws_ecs_cluster" "main" {
  name = local.cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  service_connect_defaults {
    namespace = aws_service_discovery_http_namespace.dagster.arn
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# Service Connect gives the code location the stable name `code-location` (deploy/workspace.yaml).
resource "aws_service_discovery_http_namespace" "dagster" {
  name        = "${local.name}.dagster"
  description = "Service Connect namespace of the Dagster services"
}

resource "aws_ecs_task_definition" "main" {
  for_each = local.container_definitions

  family                   = each.key == "run" ? local.run_family : "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = local.task_sizes[each.key].cpu
  memory                   = local.task_sizes[each.key].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = local.task_roles[each.key]
  container_definitions    = each.value

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }
}

# ---- services ---------------------------------------------------------------------------------------------

resource "aws_ecs_service" "code_location" {
  name             = "${local.name}-code-location"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.main["code-location"].arn
  desired_count    = var.code_location_desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.code_location.id]
    assign_public_ip = false
  }

  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.dagster.arn

    service {
      port_name      = "grpc"
      discovery_name = "code-location"

      client_alias {
        dns_name = "code-location"
        port     = 4000
      }
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

# Two webservers on the same instance: `webserver-readonly` (dagster-webserver --read-only) behind the Dagster
# load balancer's default listener, what everyone allowed sees; `webserver` (launch, backfill, wipe, re-run)
# reached only through the listener that signs editors in (none without var.dagster_oidc: ECS Exec only).
resource "aws_ecs_service" "webserver" {
  for_each = local.dagster_webservers

  name             = "${local.name}-${each.key}"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.main[each.key].arn
  desired_count    = var.webserver_desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.webserver.id]
    assign_public_ip = false
  }

  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.dagster.arn
  }

  dynamic "load_balancer" {
    for_each = each.value == "readonly" || local.dagster_editors ? [each.value] : []
    content {
      target_group_arn = aws_lb_target_group.dagster[load_balancer.value].arn
      container_name   = each.key
      container_port   = 3000
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_ecs_service.code_location, aws_lb_listener.dagster, aws_lb_listener.dagster_editors]
}

moved {
  from = aws_ecs_service.webserver
  to   = aws_ecs_service.webserver["webserver"]
}

# Dagster supports exactly one daemon: never two at once, even during a deployment.
resource "aws_ecs_service" "daemon" {
  name                               = "${local.name}-daemon"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.main["daemon"].arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.daemon.id]
    assign_public_ip = false
  }

  service_connect_configuration {
    enabled   = true
    namespace = aws_service_discovery_http_namespace.dagster.arn
  }

  depends_on = [aws_ecs_service.code_location]
}
