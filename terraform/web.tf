# The prediction web services (deploy-assets-web, serving image): one ECS Fargate service per deployment of
# var.deployments, each serving its own model, behind ONE internal Application Load Balancer; callers inside the
# VPC (and var.allowed_cidr_blocks) reach it, the internet never does.
#
#   client (VPC / VPN) ──HTTP :80 / HTTPS :443──► internal ALB ─┬─ /deployments/yellow/* ─:9696─► yellow's tasks
#                                                              ├─ /deployments/green/*  ─:9696─► green's tasks
#                                                              └─ anything else (/predict) ────► the default's
#   each target group: health check GET /ready (503 until a model is loaded)
#
# Each task has DEPLOY_ASSETS_DEPLOYMENT_NAME, so it answers at /deployments/<name>/predict... as well as at
# /predict...: the listener's rules route by that prefix, and its default action forwards to the default
# deployment (local.web_default_deployment: `yellow` if it is in the map, else the first name in sort order), so
# the unprefixed /predict of the single-model stack keeps working.
#
# Target tracking scales each service on requests per target (var.web_requests_per_target) and on CPU (60%).
# With var.web_certificate_arn the listener is HTTPS (TLS 1.2+) and port 80 only redirects to it.
# With var.web_api_key (default) callers must send the key in `X-API-Key`: a random key generated into Secrets
# Manager (output web_api_key_secret_arn; give it to the callers), injected into the tasks as a secret.

locals {
  web_port       = 9696
  web_https      = var.web_certificate_arn != null
  web_client_ips = distinct(concat([local.vpc_cidr], var.allowed_cidr_blocks))
  web_url        = "${local.web_https ? "https" : "http"}://${aws_lb.web.dns_name}"

  web_deployments        = sort(keys(var.deployments))
  web_default_deployment = contains(local.web_deployments, "yellow") ? "yellow" : local.web_deployments[0]
  # Target group names: at most 32 characters, letters, digits and hyphens. "<name>-web-<deployment>" when it
  # fits, else its first 25 characters and 6 hex digits of the deployment name's MD5 (32 in all, stable, and
  # unique: the hash tells apart names that share the first characters).
  web_target_group_full_names = { for deployment in local.web_deployments : deployment => "${local.name}-web-${replace(deployment, "_", "-")}" }
  web_target_group_names = {
    for deployment, full in local.web_target_group_full_names : deployment => (
      length(full) <= 32 ? full : "${trimsuffix(substr(full, 0, 25), "-")}-${substr(md5(deployment), 0, 6)}"
    )
  }
  # The listener that forwards (with a certificate the HTTPS one; port 80 then only redirects).
  web_forwarding_listener_arn = local.web_https ? aws_lb_listener.web_https[0].arn : aws_lb_listener.web_http.arn
}

resource "aws_security_group" "web_alb" {
  name        = "${local.name}-web-alb"
  description = "Internal load balancer of the prediction service: clients in the VPC or allowed_cidr_blocks"
  vpc_id      = local.vpc_id
}

resource "aws_security_group" "web" {
  name        = "${local.name}-web"
  description = "Prediction service tasks: reachable only from their load balancer"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "web_alb_from_clients" {
  for_each = { for pair in setproduct(local.web_client_ips, local.web_https ? [80, 443] : [80]) : "${pair[0]}:${pair[1]}" => pair }

  security_group_id = aws_security_group.web_alb.id
  description       = "Prediction API from ${each.value[0]}"
  cidr_ipv4         = each.value[0]
  ip_protocol       = "tcp"
  from_port         = each.value[1]
  to_port           = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "web_alb_to_tasks" {
  security_group_id            = aws_security_group.web_alb.id
  description                  = "To the prediction service tasks"
  referenced_security_group_id = aws_security_group.web.id
  ip_protocol                  = "tcp"
  from_port                    = local.web_port
  to_port                      = local.web_port
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "From the load balancer"
  referenced_security_group_id = aws_security_group.web_alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.web_port
  to_port                      = local.web_port
}

resource "aws_vpc_security_group_egress_rule" "web_https" {
  #checkov:skip=CKV_AWS_382:The tasks pull the model from the MLflow server and S3, whose addresses are not fixed; only port 443 is open.
  security_group_id = aws_security_group.web.id
  description       = "HTTPS to the MLflow server, S3 and ECR"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# ---- load balancer ------------------------------------------------------------------------------------------

resource "aws_lb" "web" {
  #checkov:skip=CKV2_AWS_28:Internal load balancer (no internet-facing listener); WAF protects internet-facing endpoints.
  name                       = "${local.name}-web"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = local.private_subnet_ids
  security_groups            = [aws_security_group.web_alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = aws_s3_bucket_policy.access_logs.bucket
    prefix  = "web-alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "web" {
  #checkov:skip=CKV_AWS_378:TLS ends at the internal load balancer; the hop to the tasks stays inside private subnets, reachable only from the load balancer's security group.
  for_each = var.deployments

  name                 = local.web_target_group_names[each.key]
  port                 = local.web_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = local.vpc_id
  deregistration_delay = 15

  health_check {
    path                = "/ready"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "web_https" {
  count = local.web_https ? 1 : 0

  load_balancer_arn = aws_lb.web.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.web_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web[local.web_default_deployment].arn
  }
}

resource "aws_lb_listener" "web_http" {
  #checkov:skip=CKV_AWS_2:Internal load balancer; plain HTTP only while no web_certificate_arn is given, then this listener only redirects to HTTPS.
  #checkov:skip=CKV_AWS_103:Same listener: TLS is configured on the HTTPS listener whenever web_certificate_arn is given.
  #checkov:skip=CKV2_AWS_20:Redirects to HTTPS whenever web_certificate_arn is given; without a certificate an internal HTTP listener is the only one.
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.web_https ? "redirect" : "forward"
    target_group_arn = local.web_https ? null : aws_lb_target_group.web[local.web_default_deployment].arn

    dynamic "redirect" {
      for_each = local.web_https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

# Each deployment's prefix to its own service. The patterns never overlap, so the priorities only need to be
# distinct: the deployment's place in sort order.
resource "aws_lb_listener_rule" "web" {
  for_each = var.deployments

  listener_arn = local.web_forwarding_listener_arn
  priority     = 100 + index(local.web_deployments, each.key)

  condition {
    path_pattern {
      values = ["/deployments/${each.key}/*"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web[each.key].arn
  }
}

# ---- services, one per deployment ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "web" {
  for_each = var.deployments

  name              = "/ecs/${local.name}/web-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_iam_role" "web" {
  name               = "${local.name}-web"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "web" {
  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [local.bucket_arns["mlflow"], "${local.bucket_arns["mlflow"]}/*"]
  }

  statement {
    sid       = "DecryptModelArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "web" {
  name   = "web"
  role   = aws_iam_role.web.id
  policy = data.aws_iam_policy_document.web.json
}

resource "aws_secretsmanager_secret" "web_api_key" {
  #checkov:skip=CKV2_AWS_57:A shared API key changes when its callers are ready for it: rotate by putting a new version (the tasks read it at start); no rotation Lambda.
  count = var.web_api_key ? 1 : 0

  name                    = "${local.name}/web-api-key"
  description             = "X-API-Key the prediction service asks of its callers"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.deletion_protection ? 30 : 0
}

data "aws_secretsmanager_random_password" "web_api_key" {
  count = var.web_api_key ? 1 : 0

  password_length     = 40
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "web_api_key" {
  count = var.web_api_key ? 1 : 0

  secret_id     = aws_secretsmanager_secret.web_api_key[0].id
  secret_string = data.aws_secretsmanager_random_password.web_api_key[0].random_password

  # Generated once; a rotation is a new version put by the operator, not a new plan.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_ecs_task_definition" "web" {
  for_each = var.deployments

  family                   = "${local.name}-web-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.web_task_size.cpu
  memory                   = var.web_task_size.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.web.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "web"
    image                  = "${aws_ecr_repository.serving.repository_url}:${var.image_tag}"
    essential              = true
    command                = ["deploy-assets-web", "--host", "0.0.0.0", "--port", tostring(local.web_port)]
    portMappings           = [{ containerPort = local.web_port, protocol = "tcp" }]
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment = [for name, value in {
      AWS_REGION                          = local.region
      MLFLOW_TRACKING_URI                 = var.mlflow_tracking_uri
      DEPLOY_ASSETS_DEPLOYMENT_NAME       = each.key
      DEPLOY_ASSETS_MODEL_NAME            = each.value.model_name
      DEPLOY_ASSETS_DATASET               = each.value.dataset
      DEPLOY_ASSETS_MISSING_ZONES         = each.value.missing_zones
      DEPLOY_ASSETS_MODEL_REFRESH_SECONDS = "30"
    } : { name = name, value = value }]
    secrets = [for secret in aws_secretsmanager_secret.web_api_key : { name = "DEPLOY_ASSETS_API_KEY", valueFrom = secret.arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.web[each.key].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "web"
      }
    }
  }])
}

resource "aws_ecs_service" "web" {
  for_each = var.deployments

  name                              = "${local.name}-web-${each.key}"
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.web[each.key].arn
  desired_count                     = var.web_min_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 120

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.web.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web[each.key].arn
    container_name   = "web"
    container_port   = local.web_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The autoscaler owns the task count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  # A target group takes a service once a listener (rule) forwards to it.
  depends_on = [aws_lb_listener.web_http, aws_lb_listener.web_https, aws_lb_listener_rule.web]
}

resource "aws_appautoscaling_target" "web" {
  for_each = contains(var.excluded_resources, "web_autoscaling") ? {} : var.deployments

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.web[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.web_min_count
  max_capacity       = var.web_max_count
}

resource "aws_appautoscaling_policy" "web_requests" {
  for_each = aws_appautoscaling_target.web

  name               = "${local.name}-web-${each.key}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.web_requests_per_target
    scale_in_cooldown  = 120
    scale_out_cooldown = 30

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.web.arn_suffix}/${aws_lb_target_group.web[each.key].arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_policy" "web_cpu" {
  for_each = aws_appautoscaling_target.web

  name               = "${local.name}-web-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 60
    scale_in_cooldown  = 120
    scale_out_cooldown = 30

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
