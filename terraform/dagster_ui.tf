# Who may change what: Dagster OSS has no login, so the internal Dagster load balancer decides.
#
#   allowed_cidr_blocks ──:443 (HTTPS) or :80──► internal ALB ──► webserver-readonly (dagster-webserver --read-only)
#   editors ────────────────:8443 HTTPS──► authenticate-oidc ──► webserver (launch, backfill, wipe, re-run)
#
# The sign-in listener exists only with var.dagster_oidc (and so a certificate: the ALB authenticates on HTTPS
# only). Whoever the identity provider lets through may change things: assign the OIDC client only to the
# people who may. The client secret is read from Secrets Manager (var.dagster_oidc.client_secret_arn).

locals {
  dagster_https    = var.dagster_certificate_arn != null
  dagster_editors  = var.dagster_oidc != null
  dagster_ui_url   = "${local.dagster_https ? "https" : "http"}://${aws_lb.dagster.dns_name}"
  dagster_ui_ports = concat([local.dagster_https ? 443 : 80], local.dagster_editors ? [8443] : [])
  dagster_target_groups = {
    readonly = "${local.name}-ui-readonly"
    editors  = "${local.name}-ui-editors"
  }
  # ECS service (and container) of each webserver → its target group
  dagster_webservers = {
    webserver-readonly = "readonly"
    webserver          = "editors"
  }
}

resource "aws_security_group" "dagster_alb" {
  name        = "${local.name}-dagster-alb"
  description = "Internal load balancer of the Dagster UI: clients in allowed_cidr_blocks"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "dagster_alb_from_allowed" {
  for_each = { for pair in setproduct(var.allowed_cidr_blocks, local.dagster_ui_ports) : "${pair[0]}:${pair[1]}" => pair }

  security_group_id = aws_security_group.dagster_alb.id
  description       = "Dagster UI from ${each.value[0]}"
  cidr_ipv4         = each.value[0]
  ip_protocol       = "tcp"
  from_port         = each.value[1]
  to_port           = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "dagster_alb_to_webservers" {
  security_group_id            = aws_security_group.dagster_alb.id
  description                  = "To the Dagster webservers"
  referenced_security_group_id = aws_security_group.webserver.id
  ip_protocol                  = "tcp"
  from_port                    = 3000
  to_port                      = 3000
}

resource "aws_vpc_security_group_egress_rule" "dagster_alb_to_identity_provider" {
  #checkov:skip=CKV_AWS_382:The load balancer calls the identity provider's token and user-info endpoints, whose addresses are not fixed; only port 443 is open.
  count = local.dagster_editors ? 1 : 0

  security_group_id = aws_security_group.dagster_alb.id
  description       = "HTTPS to the OIDC identity provider"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "webserver_from_dagster_alb" {
  security_group_id            = aws_security_group.webserver.id
  description                  = "Dagster UI from its load balancer"
  referenced_security_group_id = aws_security_group.dagster_alb.id
  ip_protocol                  = "tcp"
  from_port                    = 3000
  to_port                      = 3000
}

resource "aws_lb" "dagster" {
  #checkov:skip=CKV2_AWS_28:Internal load balancer (no internet-facing listener); WAF protects internet-facing endpoints.
  name                       = "${local.name}-ui"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = local.private_subnet_ids
  security_groups            = [aws_security_group.dagster_alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = aws_s3_bucket_policy.access_logs.bucket
    prefix  = "dagster-alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "dagster" {
  #checkov:skip=CKV_AWS_378:TLS ends at the internal load balancer; the hop to the webservers stays inside private subnets, reachable only from the load balancer's security group.
  for_each = local.dagster_target_groups

  name                 = each.value
  port                 = 3000
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = local.vpc_id
  deregistration_delay = 15

  health_check {
    path    = "/server_info"
    matcher = "200"
  }
}

# Everyone who may reach the load balancer: the read-only webserver.
resource "aws_lb_listener" "dagster" {
  #checkov:skip=CKV_AWS_2:Internal load balancer; plain HTTP (read-only UI) only while no dagster_certificate_arn is given, HTTPS otherwise.
  #checkov:skip=CKV_AWS_103:Same listener: TLS 1.2+ whenever dagster_certificate_arn is given.
  #checkov:skip=CKV2_AWS_20:HTTPS whenever dagster_certificate_arn is given; without a certificate an internal read-only HTTP listener is the only one.
  load_balancer_arn = aws_lb.dagster.arn
  port              = local.dagster_https ? 443 : 80
  protocol          = local.dagster_https ? "HTTPS" : "HTTP"
  ssl_policy        = local.dagster_https ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null
  certificate_arn   = var.dagster_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dagster["readonly"].arn
  }
}

data "aws_secretsmanager_secret_version" "dagster_oidc" {
  count     = local.dagster_editors ? 1 : 0
  secret_id = var.dagster_oidc.client_secret_arn
}

# Editors: signed in by the identity provider, then the webserver that can change things.
resource "aws_lb_listener" "dagster_editors" {
  count = local.dagster_editors ? 1 : 0

  load_balancer_arn = aws_lb.dagster.arn
  port              = 8443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.dagster_certificate_arn

  default_action {
    type  = "authenticate-oidc"
    order = 1

    authenticate_oidc {
      issuer                     = var.dagster_oidc.issuer
      authorization_endpoint     = var.dagster_oidc.authorization_endpoint
      token_endpoint             = var.dagster_oidc.token_endpoint
      user_info_endpoint         = var.dagster_oidc.user_info_endpoint
      client_id                  = var.dagster_oidc.client_id
      client_secret              = data.aws_secretsmanager_secret_version.dagster_oidc[0].secret_string
      on_unauthenticated_request = "authenticate"
      scope                      = "openid email"
      session_timeout            = 28800
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.dagster["editors"].arn
  }
}
