"""Production deployment: static checks of terraform/, the Dockerfile and deploy/ — no cloud, no network.

- the security properties of the stack, read from the parsed HCL (python-hcl2): private and encrypted buckets,
  a private encrypted database whose password lives in Secrets Manager, IAM without wildcards, a webserver
  closed to the internet, log retention, encrypted streams;
- `terraform fmt -check` (skipped only when no terraform binary is installed);
- checkov over terraform/ (defaults and prod.tfvars) and the Dockerfile: no failed check, every skip justified
  in place; checkov lives in its own venv (.venv-checkov, see scripts/bootstrap.sh) because of its pins;
- deploy/dagster.prod.yaml resolves, with its environment set, to the intended classes and valid configs of
  the installed dagster packages, and the EcsRunLauncher builds against a mocked ECS;
- the Dockerfile's CMD and HEALTHCHECK are commands the installed dagster CLI accepts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "terraform"
DOCKERFILE = REPO / "Dockerfile"
PROD_INSTANCE = REPO / "deploy" / "dagster.prod.yaml"
PROD_WORKSPACE = REPO / "deploy" / "workspace.yaml"

# Actions AWS does not scope to resources: the only ones an Allow statement may grant on "Resource": "*".
UNSCOPED_ACTIONS = {
    "ecr:GetAuthorizationToken": "returns a registry login token; IAM has no resource type for it",
    "ecs:DescribeTaskDefinition": "ECS does not support resource-level permissions for it",
    "ec2:DescribeNetworkInterfaces": "EC2 Describe* calls do not support resource-level permissions",
    # A Lambda function in a VPC (AWSLambdaVPCAccessExecutionRole): Lambda manages the function's network
    # interfaces, which do not exist before the call.
    "ec2:CreateNetworkInterface": "the interface is created by the call; Lambda needs it to run in the VPC",
    "ec2:DeleteNetworkInterface": "Lambda's own Hyperplane interfaces, whose ids are not known in advance",
    "ec2:AssignPrivateIpAddresses": "same interfaces as above",
    "ec2:UnassignPrivateIpAddresses": "same interfaces as above",
    "xray:PutTraceSegments": "X-Ray has no resource type for traces",
    "xray:PutTelemetryRecords": "X-Ray has no resource type for telemetry",
}

# Where envs/stg.tfvars deliberately departs from the production defaults (cost over resilience).
STAGING_RELAXATIONS = {
    "CKV_AWS_338": "30-day log retention",
    "CKV_AWS_293": "no deletion protection",
    "CKV_AWS_150": "no deletion protection (the web load balancer)",
    "CKV_AWS_157": "single-AZ database",
    "CKV_AWS_353": "no Performance Insights on the smallest instance class",
}


# ---- HCL loading ----------------------------------------------------------------------------------------


def _unquote(text: str) -> str:
    # python-hcl2 >= 7 keeps the quotes of string literals ("\"FARGATE\""); references stay "${...}".
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _clean(value):
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


class Module:
    """The blocks of one terraform directory: {(type, name): body} for resources and data, and the rest."""

    def __init__(self, directory: Path):
        import hcl2

        self.directory = directory
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.variables: dict[str, dict] = {}
        self.modules: dict[str, dict] = {}
        self.locals: dict[str, object] = {}
        self.files: list[Path] = sorted(directory.glob("*.tf"))
        for path in self.files:
            with path.open() as handle:
                parsed = _clean(hcl2.load(handle))
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in parsed.get(kind, []):
                    for block_type, named in block.items():
                        for name, body in named.items():
                            target[(block_type, name)] = body
            for block in parsed.get("variable", []):
                self.variables.update(block)
            for block in parsed.get("module", []):
                self.modules.update(block)
            for block in parsed.get("locals", []):
                self.locals.update(block)

    def of_type(self, block_type: str) -> dict[str, dict]:
        return {name: body for (kind, name), body in self.resources.items() if kind == block_type}

    def referencing(self, block_type: str, attribute: str, target: str) -> list[dict]:
        """Resources of `block_type` whose `attribute` refers to `target` (e.g. aws_s3_bucket.this)."""
        return [body for body in self.of_type(block_type).values() if f"{target}." in str(body.get(attribute, ""))]


@cache
def root() -> Module:
    return Module(TERRAFORM)


@cache
def bucket_module() -> Module:
    return Module(TERRAFORM / "modules" / "s3_bucket")


def all_modules() -> list[Module]:
    return [root(), bucket_module()]


def _block(body: dict, name: str) -> dict:
    """The first nested block `name` (python-hcl2 gives nested blocks as lists)."""
    value = body[name]
    return value[0] if isinstance(value, list) else value


def _tfvars(name: str) -> dict:
    import hcl2

    with (TERRAFORM / "envs" / f"{name}.tfvars").open() as handle:
        return _clean(hcl2.load(handle))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ---- storage --------------------------------------------------------------------------------------------


def test_every_bucket_is_private_encrypted_versioned_and_expires_old_versions():
    buckets = [(module, name) for module in all_modules() for name in module.of_type("aws_s3_bucket")]
    assert len(buckets) >= 2, "expected the data-bucket module and the access-log bucket"
    for module, name in buckets:
        ref = f"aws_s3_bucket.{name}"
        where = f"{module.directory.relative_to(REPO)}: {ref}"

        blocks = module.referencing("aws_s3_bucket_public_access_block", "bucket", ref)
        assert len(blocks) == 1, f"{where} has no public access block"
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            assert blocks[0].get(flag) is True, f"{where}: {flag} must be true"

        sse = module.referencing("aws_s3_bucket_server_side_encryption_configuration", "bucket", ref)
        assert len(sse) == 1, f"{where} has no default encryption"
        algorithm = _block(_block(sse[0], "rule"), "apply_server_side_encryption_by_default")["sse_algorithm"]
        assert algorithm in {"aws:kms", "AES256"}, where

        versioning = module.referencing("aws_s3_bucket_versioning", "bucket", ref)
        assert len(versioning) == 1 and _block(versioning[0], "versioning_configuration")["status"] == "Enabled", where

        lifecycle = module.referencing("aws_s3_bucket_lifecycle_configuration", "bucket", ref)
        assert len(lifecycle) == 1, f"{where} has no lifecycle configuration"
        rules = _as_list(lifecycle[0]["rule"])
        assert any("noncurrent_version_expiration" in rule for rule in rules), f"{where} keeps old versions forever"

        ownership = module.referencing("aws_s3_bucket_ownership_controls", "bucket", ref)
        assert ownership and _block(ownership[0], "rule")["object_ownership"] == "BucketOwnerEnforced", where

        policies = module.referencing("aws_s3_bucket_policy", "bucket", ref)
        assert len(policies) == 1, f"{where} has no TLS-only bucket policy"


def test_data_buckets_use_the_kms_module_and_landing_publishes_events():
    calls = {name: body for name, body in root().modules.items() if body["source"] == "./modules/s3_bucket"}
    assert {"landing_bucket", "predictions_bucket", "mlflow_bucket", "dagster_bucket"} <= set(calls)
    for name, call in calls.items():
        assert "aws_kms_key.main" in call["kms_key_arn"], name
        # Through the log bucket's policy: S3 refuses logging to a bucket whose policy does not yet allow delivery.
        assert call["access_log_bucket"] == "${aws_s3_bucket_policy.access_logs.bucket}", name

    module = bucket_module()
    sse = module.of_type("aws_s3_bucket_server_side_encryption_configuration")["this"]
    assert _block(_block(sse, "rule"), "apply_server_side_encryption_by_default")["sse_algorithm"] == "aws:kms"
    # Versioning is unconditional in the module, so the predictions bucket (and every data bucket) is versioned.
    assert _block(module.of_type("aws_s3_bucket_versioning")["this"], "versioning_configuration")["status"] == "Enabled"
    # Uploads to the landing bucket (and the others) reach EventBridge.
    assert module.of_type("aws_s3_bucket_notification")["this"]["eventbridge"] is True


def test_database_is_private_encrypted_and_its_password_is_managed_by_rds():
    (db,) = root().of_type("aws_db_instance").values()
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["manage_master_user_password"] is True
    assert "password" not in db, "the master password must never be in terraform (or its state)"
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert root().variables["deletion_protection"]["default"] is True
    assert _tfvars("prod")["deletion_protection"] is True
    assert db["iam_database_authentication_enabled"] is True
    subnet_group = root().of_type("aws_db_subnet_group")["dagster"]
    assert subnet_group["subnet_ids"] == "${local.private_subnet_ids}"
    parameters = {p["name"]: p["value"] for p in _as_list(root().of_type("aws_db_parameter_group")["dagster"]["parameter"])}
    assert parameters["rds.force_ssl"] == "1"


# ---- IAM ------------------------------------------------------------------------------------------------


def _policy_documents():
    key_policies = {
        str(body.get("policy", "")).removeprefix("${data.aws_iam_policy_document.").split(".")[0]
        for body in root().of_type("aws_kms_key").values()
    }
    for module in all_modules():
        for (kind, name), body in module.data.items():
            if kind == "aws_iam_policy_document":
                yield module, name, name in key_policies and module is root(), _as_list(body.get("statement", []))


def test_no_iam_statement_allows_wildcard_actions_or_unscoped_resources():
    checked = 0
    for module, name, is_key_policy, statements in _policy_documents():
        for statement in statements:
            where = f"{module.directory.relative_to(REPO)}: data.aws_iam_policy_document.{name} {statement.get('sid', '')}"
            effect = statement.get("effect", "Allow")
            actions = _as_list(statement.get("actions", []))
            resources = _as_list(statement.get("resources", []))
            assert "not_actions" not in statement and "not_resources" not in statement, where
            if effect == "Deny":
                continue  # a broad Deny (e.g. all of s3:* without TLS) only ever narrows access
            checked += 1
            if is_key_policy:
                # Key policy: "Resource": "*" means this key. kms:* only for the account root (AWS's default
                # statement, which delegates to IAM); everything else names its actions.
                principals = _as_list(statement["principals"])
                if "kms:*" in actions:
                    assert principals[0]["type"] == "AWS", where
                    assert _as_list(principals[0]["identifiers"]) == [
                        "arn:${local.partition}:iam::${local.account_id}:root"
                    ], where
                else:
                    assert not any(action == "*" or action.endswith(":*") for action in actions), where
                continue
            for action in actions:
                assert action != "*" and not action.endswith(":*"), f"{where}: wildcard action {action}"
            if "*" in resources:
                assert resources == ["*"], where
                assert set(actions) <= set(UNSCOPED_ACTIONS), f"{where}: Resource * for {actions}"
    assert checked >= 20


def test_run_launcher_permissions_are_scoped_to_the_cluster_and_the_run_roles():
    statements = {s["sid"]: s for s in _as_list(root().data[("aws_iam_policy_document", "control_plane")]["statement"])}
    run_task = statements["RunTasksOfTheRunFamilyInThisCluster"]
    assert run_task["actions"] == ["ecs:RunTask"]
    assert run_task["resources"] == ["${local.run_task_def_arn}"]
    assert _block(run_task, "condition")["variable"] == "ecs:cluster"

    pass_role = statements["PassOnlyTheRunRoles"]
    assert pass_role["actions"] == ["iam:PassRole"]
    assert sorted(pass_role["resources"]) == ["${aws_iam_role.execution.arn}", "${aws_iam_role.run.arn}"]
    assert _block(pass_role, "condition")["values"] == ["ecs-tasks.amazonaws.com"]

    # Only the four data buckets appear in the run workers' policy; no run reads or writes a stream.
    run = _as_list(root().data[("aws_iam_policy_document", "run")]["statement"])
    assert not [a for s in run for a in s["actions"] if a.startswith("kinesis:")]
    s3 = [r for s in run for r in _as_list(s["resources"]) if any(a.startswith("s3:") for a in s["actions"])]
    assert s3 and all("local.bucket_arns" in r for r in s3)


def test_each_stream_consumer_reads_ride_events_and_writes_only_its_own_stream():
    statements = {s["sid"]: s for s in _as_list(root().data[("aws_iam_policy_document", "stream")]["statement"])}
    # Its own deployment's ride_events (a consumer is one deployment's champion or shadow).
    assert statements["ReadRideEvents"]["resources"] == ["${aws_kinesis_stream.ride_events[each.value.deployment].arn}"]
    assert not any(a in {"kinesis:PutRecord", "kinesis:PutRecords"} for a in statements["ReadRideEvents"]["actions"])
    assert statements["WriteItsOwnPredictions"]["resources"] == ["${each.value.output_stream.arn}"]
    assert statements["WriteItsOwnDeadLetters"]["resources"] == [
        "${local.bucket_arns[\"predictions\"]}/${local.stream_dead_letter_prefix}/${each.key}/*"
    ]
    # The kinds, each writing its own stream of the consumer's deployment.
    outputs = root().locals["stream_outputs"]
    assert outputs["champion"] == "${aws_kinesis_stream.ride_predictions}"
    assert outputs["shadow"] == "${aws_kinesis_stream.ride_predictions_shadow}"
    kinds = root().locals["stream_consumer_kinds"]
    assert set(kinds) == {"champion", "shadow"}
    assert kinds["champion"]["alias"] == "champion" and kinds["shadow"]["alias"] == "${var.shadow_model_alias}"
    # One consumer per deployment of the map and kind, keyed "<deployment>-<kind>", with that deployment's model.
    consumers = root().locals["stream_consumers"]
    assert "for deployment, spec in var.deployments" in consumers
    assert "for kind, consumer in local.stream_consumer_kinds" in consumers
    assert '"${deployment}-${kind}" =>' in consumers
    assert "model_name = spec.model_name" in consumers
    assert "output_stream = local.stream_outputs[kind][deployment]" in consumers
    for kind, name in [
        ("aws_lambda_function", "stream"), ("aws_lambda_event_source_mapping", "stream"), ("aws_iam_role", "stream"),
        ("aws_sqs_queue", "stream_on_failure"), ("aws_cloudwatch_log_group", "stream"),
    ]:
        assert root().of_type(kind)[name]["for_each"] == "${local.stream_consumers}", f"{kind}.{name}"
    mapping = root().of_type("aws_lambda_event_source_mapping")["stream"]
    assert mapping["event_source_arn"] == "${aws_kinesis_stream.ride_events[each.value.deployment].arn}"
    environment = _block(root().of_type("aws_lambda_function")["stream"], "environment")["variables"]
    assert environment["DEPLOY_ASSETS_MODEL_NAME"] == "${each.value.model_name}"
    assert environment["DEPLOY_ASSETS_DEPLOYMENT_NAME"] == "${each.value.deployment}"
    # The web service reads model artifacts only.
    web = _as_list(root().data[("aws_iam_policy_document", "web")]["statement"])
    assert {a for s in web for a in s["actions"]} == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}


# ---- network --------------------------------------------------------------------------------------------


def test_webserver_is_not_reachable_from_the_internet():
    module = root()
    everywhere = {"0.0.0.0/0", "::/0"}
    for name, group in module.of_type("aws_security_group").items():
        assert "ingress" not in group, f"aws_security_group.{name}: use aws_vpc_security_group_ingress_rule"
    ingress = module.of_type("aws_vpc_security_group_ingress_rule")
    for name, rule in ingress.items():
        assert rule.get("cidr_ipv4") not in everywhere and rule.get("cidr_ipv6") not in everywhere, name
    # The webservers take connections only from the Dagster load balancer, which takes allowed_cidr_blocks.
    webserver_rules = [r for r in ingress.values() if r["security_group_id"] == "${aws_security_group.webserver.id}"]
    assert [(r["referenced_security_group_id"], r["from_port"]) for r in webserver_rules] == [
        ("${aws_security_group.dagster_alb.id}", 3000)
    ]
    alb_rules = [r for r in ingress.values() if r["security_group_id"] == "${aws_security_group.dagster_alb.id}"]
    assert len(alb_rules) == 1 and "var.allowed_cidr_blocks" in alb_rules[0]["for_each"]
    assert alb_rules[0]["cidr_ipv4"] == "${each.value[0]}"

    allowed = module.variables["allowed_cidr_blocks"]
    assert allowed["default"] == []
    assert "0.0.0.0/0" in str(allowed["validation"]) and "::/0" in str(allowed["validation"])
    for env in ("stg", "prod"):
        assert not everywhere & set(_tfvars(env).get("allowed_cidr_blocks", [])), env

    for name, service in module.of_type("aws_ecs_service").items():
        assert _block(service, "network_configuration")["assign_public_ip"] is False, name
    text = (TERRAFORM / "ecs.tf").read_text()
    assert "readonlyRootFilesystem = true" in text and 'user                   = "10001:10001"' in text


# ---- who may change what: the Dagster UI, the prediction service's key, alerts ----------------------------


def test_editors_sign_in_and_everyone_else_gets_the_read_only_webserver():
    module = root()
    (lb,) = [b for name, b in module.of_type("aws_lb").items() if name == "dagster"]
    assert lb["internal"] is True and lb["drop_invalid_header_fields"] is True
    # Everyone allowed: the read-only webserver.
    readonly = module.of_type("aws_lb_listener")["dagster"]
    assert _block(readonly, "default_action")["target_group_arn"] == '${aws_lb_target_group.dagster["readonly"].arn}'
    webservers = module.of_type("aws_ecs_service")["webserver"]
    assert webservers["for_each"] == "${local.dagster_webservers}"
    assert module.locals["dagster_webservers"] == {"webserver-readonly": "readonly", "webserver": "editors"}
    # the read-only one always behind its target group, the full one only behind the editors' listener
    load_balancer = _block(_block(webservers, "dynamic"), "load_balancer")
    assert load_balancer["for_each"] == '${each.value == "readonly" || local.dagster_editors ? [each.value] : []}'
    assert module.locals["containers"]["webserver-readonly"]["command"][-1] == "--read-only"
    # Editors: HTTPS, signed in by the identity provider before anything is forwarded to the full webserver.
    editors = module.of_type("aws_lb_listener")["dagster_editors"]
    assert editors["protocol"] == "HTTPS" and editors["count"] == "${local.dagster_editors ? 1 : 0}"
    actions = sorted(_as_list(editors["default_action"]), key=lambda action: action["order"])
    assert [a["type"] for a in actions] == ["authenticate-oidc", "forward"]
    oidc = _block(actions[0], "authenticate_oidc")
    assert oidc["on_unauthenticated_request"] == "authenticate"
    assert oidc["client_secret"] == "${data.aws_secretsmanager_secret_version.dagster_oidc[0].secret_string}"
    assert actions[1]["target_group_arn"] == '${aws_lb_target_group.dagster["editors"].arn}'
    assert "client_secret_arn" in module.variables["dagster_oidc"]["type"]
    # The read-only webserver's role reads logs and nothing else.
    statements = _as_list(module.data[("aws_iam_policy_document", "webserver_readonly")]["statement"])
    assert {a for s in statements for a in s["actions"]} == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}


def test_only_known_callers_score_and_alerts_reach_an_encrypted_topic():
    module = root()
    secret = module.of_type("aws_secretsmanager_secret")["web_api_key"]
    assert secret["kms_key_id"] == "${aws_kms_key.main.arn}" and module.variables["web_api_key"]["default"] is True
    text = (TERRAFORM / "web.tf").read_text()
    assert 'name = "DEPLOY_ASSETS_API_KEY", valueFrom = secret.arn' in text
    execution = {s["sid"]: s for s in _as_list(module.data[("aws_iam_policy_document", "execution")]["statement"])}
    assert "aws_secretsmanager_secret.web_api_key[*].arn" in str(execution["ReadTaskSecrets"]["resources"])

    topic = module.of_type("aws_sns_topic")["alerts"]
    assert topic["kms_master_key_id"] == "${aws_kms_key.main.arn}"
    subscription = module.of_type("aws_sns_topic_subscription")["alert_emails"]
    assert subscription["protocol"] == "email" and subscription["for_each"] == "${toset(var.alert_emails)}"
    code = {s["sid"]: s for s in _as_list(module.data[("aws_iam_policy_document", "code_location")]["statement"])}
    assert code["PublishAlerts"] == {"sid": "PublishAlerts", "actions": ["sns:Publish"], "resources": ["${aws_sns_topic.alerts.arn}"]}
    # The code location (whose sensors notify) and the runs get the topic in their environment.
    assert "DEPLOY_ASSETS_ALERT_SNS_TOPIC_ARN = aws_sns_topic.alerts.arn" in str(module.locals["code_environment"])


# ---- logs, streams, registry ----------------------------------------------------------------------------


def test_log_groups_have_retention_and_encryption():
    groups = root().of_type("aws_cloudwatch_log_group")
    assert {"ecs", "rds"} <= set(groups)
    for name, group in groups.items():
        assert group["retention_in_days"] == "${var.log_retention_days}", name
        assert group["kms_key_id"] == "${aws_kms_key.main.arn}", name
    assert root().variables["log_retention_days"]["default"] >= 365


def test_kinesis_streams_are_encrypted_with_the_stack_key():
    streams = root().of_type("aws_kinesis_stream")
    assert set(streams) == {"ride_events", "ride_predictions", "ride_predictions_shadow"}
    for name, stream in streams.items():
        assert stream["encryption_type"] == "KMS", name
        assert stream["kms_key_id"] == "${aws_kms_key.main.arn}", name
        assert stream["name"].endswith(name)
        # One of each per deployment, named after it.
        assert stream["for_each"] == "${var.deployments}", name
        assert stream["name"] == "${local.name}-${each.key}-" + name


def test_the_deployments_map_drives_every_online_resource(monkeypatch):
    """Adding a deployment is its YAML file plus one entry of terraform's `deployments` map: the map's default
    names the deployments under deploy_assets/defs/ with their registered models, and every online resource
    (streams, stream consumers, web service, target group, listener rule, autoscaling) is one per entry."""
    module = root()
    assert "model_name" not in module.variables, "the deployments map replaces the single model_name"
    variable = module.variables["deployments"]
    assert variable["type"] == "${map(object({model_name = string}))}"
    assert variable["default"] == {"yellow": {"model_name": "trip-duration"}, "green": {"model_name": "green-trip-duration"}}
    conditions = " ".join(v["condition"] for v in _as_list(variable["validation"]))
    assert 'regex("^[a-z][a-z0-9_]*$", name)' in conditions and "length(var.deployments) > 0" in conditions

    from deploy_assets.declared import declared_settings

    monkeypatch.delenv("DEPLOY_ASSETS_MODEL_NAME", raising=False)  # the shipped names, not a test's own
    declared = {name: settings.registered_model for name, settings in declared_settings().items()}
    assert declared == {name: entry["model_name"] for name, entry in variable["default"].items()}
    assert sorted(path.parent.name for path in (REPO / "deploy_assets" / "defs").glob("*/defs.yaml")) == sorted(declared)

    for block_type, name in [
        ("aws_kinesis_stream", "ride_events"), ("aws_kinesis_stream", "ride_predictions"),
        ("aws_kinesis_stream", "ride_predictions_shadow"), ("aws_lb_target_group", "web"),
        ("aws_lb_listener_rule", "web"), ("aws_cloudwatch_log_group", "web"), ("aws_ecs_task_definition", "web"),
        ("aws_ecs_service", "web"),
    ]:
        assert module.of_type(block_type)[name]["for_each"] == "${var.deployments}", f"{block_type}.{name}"
    for name in ("web_requests", "web_cpu"):
        assert module.of_type("aws_appautoscaling_policy")[name]["for_each"] == "${aws_appautoscaling_target.web}"

    # Each web service its own task definition (with its deployment's name and model) and target group.
    service = module.of_type("aws_ecs_service")["web"]
    assert service["task_definition"] == "${aws_ecs_task_definition.web[each.key].arn}"
    assert _block(service, "load_balancer")["target_group_arn"] == "${aws_lb_target_group.web[each.key].arn}"
    containers = module.of_type("aws_ecs_task_definition")["web"]["container_definitions"]
    assert "DEPLOY_ASSETS_DEPLOYMENT_NAME = each.key" in containers
    assert "DEPLOY_ASSETS_MODEL_NAME = each.value.model_name" in containers
    assert "awslogs-group = aws_cloudwatch_log_group.web[each.key].name" in containers
    assert module.of_type("aws_lb_target_group")["web"]["name"] == "${local.web_target_group_names[each.key]}"

    # The load balancer: /deployments/<name>/* to that deployment's target group, on the listener that forwards;
    # the default action (unprefixed /predict) to the default deployment, yellow when it is in the map.
    rule = module.of_type("aws_lb_listener_rule")["web"]
    assert _block(_block(rule, "condition"), "path_pattern")["values"] == ["/deployments/${each.key}/*"]
    assert _block(rule, "action") == {"type": "forward", "target_group_arn": "${aws_lb_target_group.web[each.key].arn}"}
    assert rule["listener_arn"] == "${local.web_forwarding_listener_arn}"
    assert module.locals["web_forwarding_listener_arn"] == (
        "${local.web_https ? aws_lb_listener.web_https[0].arn : aws_lb_listener.web_http.arn}"
    )
    assert module.locals["web_deployments"] == "${sort(keys(var.deployments))}"
    assert module.locals["web_default_deployment"] == (
        '${contains(local.web_deployments, "yellow") ? "yellow" : local.web_deployments[0]}'
    )
    default = "${aws_lb_target_group.web[local.web_default_deployment].arn}"
    assert _block(module.of_type("aws_lb_listener")["web_https"], "default_action")["target_group_arn"] == default
    assert _block(module.of_type("aws_lb_listener")["web_http"], "default_action")["target_group_arn"] == (
        "${local.web_https ? null : aws_lb_target_group.web[local.web_default_deployment].arn}"
    )


def test_ecr_tags_are_immutable_and_scanned():
    repositories = root().of_type("aws_ecr_repository")
    assert set(repositories) == {"code", "serving"}
    for repository in repositories.values():
        assert repository["image_tag_mutability"] == "IMMUTABLE"
        assert _block(repository, "image_scanning_configuration")["scan_on_push"] is True
        assert _block(repository, "encryption_configuration")["encryption_type"] == "KMS"


def test_kms_key_rotates():
    (key,) = root().of_type("aws_kms_key").values()
    assert key["enable_key_rotation"] is True


# ---- tools: terraform fmt, checkov ----------------------------------------------------------------------


@pytest.mark.servers  # starts real processes
def test_terraform_fmt():
    terraform = shutil.which("terraform")
    if terraform is None:
        reason = "no terraform binary on PATH: `terraform fmt -check` cannot run (install terraform >= 1.10)"
        print(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}{result.stderr}"


def _provider_mirror() -> Path | None:
    """A local provider mirror holding hashicorp/aws (this machine image ships one in /opt/tf-plugins)."""
    for candidate in (os.environ.get("TF_PLUGIN_DIR"), "/opt/tf-plugins"):
        if candidate and any(Path(candidate).glob("registry.terraform.io/hashicorp/aws/5.*/*/terraform-provider-aws*")):
            return Path(candidate)
    return None


@pytest.mark.servers  # starts real processes
def test_terraform_validate(tmp_path):
    """`terraform validate` against the real AWS provider schema, from a local mirror (no registry access)."""
    terraform = shutil.which("terraform")
    mirror = _provider_mirror()
    if terraform is None or mirror is None:
        reason = (
            "no terraform binary on PATH"
            if terraform is None
            else "no local mirror of the hashicorp/aws 5.x provider (set TF_PLUGIN_DIR); `make tf-validate` downloads it"
        )
        print(reason)
        pytest.skip(reason)
    workdir = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, workdir, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    for command in (
        ["init", "-backend=false", "-input=false", f"-plugin-dir={mirror}"],
        ["validate", "-no-color"],
    ):
        result = subprocess.run(
            [terraform, f"-chdir={workdir}", *command], capture_output=True, text=True, timeout=180, env=env
        )
        assert result.returncode == 0, f"terraform {command[0]}:\n{result.stdout}{result.stderr}"
    assert "The configuration is valid" in result.stdout


# ---- terraform apply / show / destroy against an AWS emulator (moto's server) ---------------------------------

# The one place listing what moto cannot create, with the reason. Each key is a value of the configuration's
# `excluded_resources` variable (terraform/variables.tf), which is empty on AWS (envs/*.tfvars never set it).
EMULATOR_GAPS = {
    "web_autoscaling": (
        "moto 5.2 does not implement Application Auto Scaling's ListTagsForResource, which the AWS provider calls "
        "to read the scalable target back after RegisterScalableTarget (with default_tags): the create never "
        "completes. The target and both target-tracking policies are checked statically below instead."
    ),
}

# Every service endpoint the configuration's resources and data sources call, pointed at the emulator.
EMULATED_SERVICES = [
    "applicationautoscaling", "cloudwatch", "ec2", "ecr", "ecs", "elbv2", "events", "iam", "kinesis", "kms",
    "lambda", "logs", "rds", "s3", "secretsmanager", "servicediscovery", "sns", "sqs", "sts",
]


def _emulator_override(endpoint: str) -> str:
    endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in EMULATED_SERVICES)
    return f"""# Written by deploy_assets_tests/test_terraform.py: state on local disk, every AWS API on the emulator.
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


def _terraform(
    terraform: str, workdir: Path, *args: str, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess:
    started = time.monotonic()
    try:
        return _run_terraform(terraform, workdir, *args, timeout=timeout, stdin=stdin)
    finally:
        print(f"terraform {args[0]}: {time.monotonic() - started:.1f} s")


def _run_terraform(
    terraform: str, workdir: Path, *args: str, timeout: float, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "TF_CLI_ARGS"):
        env.pop(name, None)
    return subprocess.run(
        [terraform, f"-chdir={workdir}", *args], capture_output=True, text=True, timeout=timeout, env=env,
        **({} if stdin is None else {"input": stdin}),
    )


def _show_resources(state: dict) -> list[dict]:
    found = []

    def walk(module: dict) -> None:
        found.extend(module.get("resources", []))
        for child in module.get("child_modules", []):
            walk(child)

    walk(state.get("values", {}).get("root_module", {}))
    return found


@pytest.mark.servers
@pytest.mark.timeout(900)
def test_terraform_apply_show_destroy_against_moto(tmp_path):
    """`terraform init / apply / show / destroy` of the real configuration (envs/stg.tfvars, a created VPC, no
    placeholder), with the provider's endpoints on a moto server started here."""
    from deploy_assets_tests import servers

    terraform = shutil.which("terraform")
    mirror = _provider_mirror()
    if terraform is None or mirror is None:
        reason = "no terraform binary on PATH" if terraform is None else (
            "no local mirror of the hashicorp/aws 5.x provider (set TF_PLUGIN_DIR): providers cannot be downloaded here"
        )
        print(reason)
        pytest.skip(reason)
    assert set(EMULATOR_GAPS) <= set(_excludable_resources()), "EMULATOR_GAPS names a part the variable does not know"

    workdir = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, workdir, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    # terraform sends up to 20 requests at once; moto's backends race on concurrent changes to one security group
    moto, endpoint = servers.start_moto(tmp_path, one_request_at_a_time=True)
    try:
        (workdir / "emulator_override.tf").write_text(_emulator_override(endpoint))
        result = _terraform(terraform, workdir, "init", "-input=false", "-no-color", f"-plugin-dir={mirror}")
        assert result.returncode == 0, result.stdout + result.stderr

        variables = [
            "-var-file=envs/stg.tfvars",
            "-var=image_tag=test-0123abc",
            "-var=mlflow_tracking_uri=https://mlflow.test.internal",
            f"-var=excluded_resources={json.dumps(sorted(EMULATOR_GAPS))}",
            *_sign_in_variables(endpoint),
            f"-var=alert_emails={json.dumps([ALERT_EMAIL])}",
        ]
        _check_deployment_names(terraform, workdir, variables)
        result = _terraform(
            terraform, workdir, "apply", "-auto-approve", "-no-color", "-parallelism=20", *variables, timeout=600
        )
        assert result.returncode == 0, f"terraform apply:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        assert "Apply complete!" in result.stdout
        (tmp_path / "apply.log").write_text(result.stdout)
        slow = sorted(re.findall(r"^(\S+): Creation complete after (\d+)s", result.stdout, re.M), key=lambda x: -int(x[1]))
        print("slowest creates:", slow[:6])

        result = _terraform(terraform, workdir, "show", "-json", "-no-color")
        assert result.returncode == 0, result.stderr
        text = result.stdout
        assert "REPLACE" not in text and "example." not in text, "a placeholder reached the applied resources"
        resources = _show_resources(json.loads(text))
        by_type: dict[str, list[dict]] = {}
        for resource in resources:
            by_type.setdefault(resource["type"], []).append(resource["values"])
        _check_applied_online_side(by_type)
        result = _terraform(terraform, workdir, "output", "-json", "-no-color")
        assert result.returncode == 0, result.stderr
        _check_outputs_by_deployment({name: output["value"] for name, output in json.loads(result.stdout).items()})
        _check_applied_access_and_alerts(by_type)
        assert len(resources) >= 120, len(resources)
        _check_emulator_state(endpoint, by_type)

        result = _terraform(
            terraform, workdir, "destroy", "-auto-approve", "-no-color", "-parallelism=20", "-refresh=false",
            *variables, timeout=600,
        )
        assert result.returncode == 0, f"terraform destroy:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        slow = sorted(re.findall(r"^(\S+): Destruction complete after (\d+)s", result.stdout, re.M), key=lambda x: -int(x[1]))
        print("slowest destroys:", slow[:6])
        result = _terraform(terraform, workdir, "state", "list", "-no-color")
        assert result.returncode == 0 and [line for line in result.stdout.splitlines() if not line.startswith("data.")] == []
    finally:
        moto.stop()


# The deployments of terraform/variables.tf's default map (the YAML ones, see test_the_deployments_map_...):
# each has its own streams, stream functions, web service and target group.
DEPLOYMENTS = {"yellow": "trip-duration", "green": "green-trip-duration"}
CONSUMER_ALIASES = {"champion": "champion", "shadow": "challenger"}


def _path_patterns(conditions: list[dict]) -> list[str]:
    """The path patterns of a listener rule's conditions, as terraform state or the ELBv2 API gives them."""
    found = []
    for condition in conditions:
        for pattern in condition.get("path_pattern", []):
            found.extend(pattern["values"])
        if condition.get("Field") == "path-pattern":
            found.extend(condition.get("PathPatternConfig", {}).get("Values") or condition.get("Values", []))
    return found


def _check_applied_online_side(by_type: dict[str, list[dict]]) -> None:
    # The VPC was created (no subnet or VPC id given), with private subnets in two AZs.
    assert len(by_type["aws_vpc"]) == 1
    private = [s for s in by_type["aws_subnet"] if "private" in s["tags"]["Name"]]
    assert len({s["availability_zone"] for s in private}) == 2 and not any(s["map_public_ip_on_launch"] for s in private)

    # Per deployment: its three streams, and two stream consumers on its own ride_events, each with its own
    # function, alias and output stream, and the deployment's model.
    streams = {s["name"]: s["arn"] for s in by_type["aws_kinesis_stream"]}
    assert set(streams) == {
        f"deploy-assets-stg-{deployment}-{stream}"
        for deployment in DEPLOYMENTS for stream in ("ride_events", "ride_predictions", "ride_predictions_shadow")
    }
    functions = {f["function_name"]: f for f in by_type["aws_lambda_function"]}
    assert set(functions) == {
        f"deploy-assets-stg-stream-{deployment}-{kind}" for deployment in DEPLOYMENTS for kind in CONSUMER_ALIASES
    }
    outputs = {}
    for name, function in functions.items():
        deployment, kind = name.removeprefix("deploy-assets-stg-stream-").split("-")
        assert function["package_type"] == "Image" and function["image_uri"].endswith("-serving:test-0123abc")
        assert function["image_config"][0]["entry_point"] == ["python", "-m", "awslambdaric"]
        assert function["image_config"][0]["command"] == ["deploy_assets.serving.stream.lambda_handler.handler"]
        env = function["environment"][0]["variables"]
        outputs[(deployment, env["DEPLOY_ASSETS_MODEL_ALIAS"])] = env["DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM"]
        assert env["DEPLOY_ASSETS_MODEL_NAME"] == DEPLOYMENTS[deployment], name
        assert env["DEPLOY_ASSETS_DEPLOYMENT_NAME"] == deployment, name
        assert env["DEPLOY_ASSETS_STREAM_DEAD_LETTER"].startswith("s3://")
        assert env["DEPLOY_ASSETS_STREAM_DEAD_LETTER"].endswith(f"/stream-dead-letters/{deployment}-{kind}"), name
    assert outputs == {
        (deployment, alias): f"deploy-assets-stg-{deployment}-{stream}"
        for deployment in DEPLOYMENTS
        for alias, stream in (("champion", "ride_predictions"), ("challenger", "ride_predictions_shadow"))
    }
    mappings = by_type["aws_lambda_event_source_mapping"]
    assert len(mappings) == 2 * len(DEPLOYMENTS)
    queues = {q["arn"] for q in by_type["aws_sqs_queue"]}
    by_arn = {f["arn"]: name for name, f in functions.items()}
    fed = {}
    for mapping in mappings:
        function = by_arn[mapping["function_name"]]
        deployment = function.removeprefix("deploy-assets-stg-stream-").split("-")[0]
        assert mapping["event_source_arn"] == streams[f"deploy-assets-stg-{deployment}-ride_events"], function
        assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
        assert mapping["bisect_batch_on_function_error"] is True
        assert mapping["batch_size"] == 500 and mapping["maximum_batching_window_in_seconds"] == 1
        assert mapping["destination_config"][0]["on_failure"][0]["destination_arn"] in queues
        fed.setdefault(deployment, set()).add(function)
    assert {m["function_name"].rsplit(":", 1)[-1] for m in mappings} == {f["arn"].rsplit(":", 1)[-1] for f in functions.values()}
    assert fed == {d: {f"deploy-assets-stg-stream-{d}-{kind}" for kind in CONSUMER_ALIASES} for d in DEPLOYMENTS}
    assert len({m["destination_config"][0]["on_failure"][0]["destination_arn"] for m in mappings}) == len(mappings)

    # The web services: one internal ALB, and per deployment a target group with its health check on /ready and
    # a Fargate service registered with it, whose tasks serve that deployment's model.
    (lb,) = [lb for lb in by_type["aws_lb"] if lb["name"] == "deploy-assets-stg-web"]
    assert lb["internal"] is True and lb["load_balancer_type"] == "application"
    groups = {group["name"]: group for group in by_type["aws_lb_target_group"]}
    services = {s["name"]: s for s in by_type["aws_ecs_service"]}
    definitions = {d["family"]: d for d in by_type["aws_ecs_task_definition"]}
    assert not {"deploy-assets-stg-web"} & (set(groups) | set(services) | set(definitions))
    for deployment, model_name in DEPLOYMENTS.items():
        group = groups[f"deploy-assets-stg-web-{deployment}"]
        assert group["health_check"][0]["path"] == "/ready" and group["port"] == 9696
        web = services[f"deploy-assets-stg-web-{deployment}"]
        assert web["load_balancer"][0]["target_group_arn"] == group["arn"]
        definition = definitions[f"deploy-assets-stg-web-{deployment}"]
        assert web["task_definition"] == definition["arn"]
        (container,) = json.loads(definition["container_definitions"])
        assert container["command"][0] == "deploy-assets-web" and container["image"].endswith("-serving:test-0123abc")
        environment = {e["name"]: e["value"] for e in container["environment"]}
        assert environment["DEPLOY_ASSETS_DEPLOYMENT_NAME"] == deployment
        assert environment["DEPLOY_ASSETS_MODEL_NAME"] == model_name
        assert container["logConfiguration"]["options"]["awslogs-group"] == f"/ecs/deploy-assets-stg/web-{deployment}"
    assert len({g["arn"] for g in groups.values()}) == len(groups) and all(len(name) <= 32 for name in groups)

    # The web load balancer's listener (HTTP: no web_certificate_arn in stg): /deployments/<name>/* to that
    # deployment's target group, everything else (the unprefixed /predict) to yellow's.
    (listener,) = [x for x in by_type["aws_lb_listener"] if x["load_balancer_arn"] == lb["arn"]]
    assert listener["port"] == 80
    assert listener["default_action"][0]["target_group_arn"] == groups["deploy-assets-stg-web-yellow"]["arn"]
    rules = [rule for rule in by_type["aws_lb_listener_rule"] if rule["listener_arn"] == listener["arn"]]
    routes = {}
    for rule in rules:
        (action,) = rule["action"]
        assert action["type"] == "forward"
        for pattern in _path_patterns(rule["condition"]):
            routes[pattern] = action["target_group_arn"]
    assert routes == {
        f"/deployments/{deployment}/*": groups[f"deploy-assets-stg-web-{deployment}"]["arn"] for deployment in DEPLOYMENTS
    }
    assert routes["/deployments/green/*"] == groups["deploy-assets-stg-web-green"]["arn"]
    assert len({rule["priority"] for rule in rules}) == len(rules)


def _check_deployment_names(terraform: str, workdir: Path, variables: list[str]) -> None:
    """Deployment names that are not valid, or would make a resource name too long, fail the plan; target group
    names (32 characters at most) stay valid and distinct for long deployment names."""
    longest = "d" * 29  # "deploy-assets-prod-stream-<29>-champion": 64 characters, Lambda's and IAM's limit
    deployments = {name: {"model_name": f"{name}-model"} for name in (
        "yellow", "green", "fhv_high_volume_long", "fhv_high_volume_lon2", longest,
    )}
    result = _terraform(
        terraform, workdir, "console", "-no-color", *variables, "-var=environment=prod",
        f"-var=deployments={json.dumps(deployments)}", stdin="jsonencode(local.web_target_group_names)\n", timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = json.loads(json.loads(result.stdout.strip()))
    assert set(names) == set(deployments)
    assert names["yellow"] == "deploy-assets-prod-web-yellow" and names["green"] == "deploy-assets-prod-web-green"
    assert len(set(names.values())) == len(names), names
    for name in names.values():
        assert len(name) <= 32 and re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", name), name

    invalid = {"Green": {"model_name": "m"}, "d" * 30: {"model_name": "m"}}
    result = _terraform(
        terraform, workdir, "plan", "-input=false", "-no-color", "-refresh=false", *variables, "-var=environment=prod",
        f"-var=deployments={json.dumps(invalid)}", timeout=300,
    )
    assert result.returncode != 0
    errors = " ".join(result.stderr.split())
    assert "lower-case letters, digits and underscores, starting with a letter" in errors, result.stderr
    assert "A deployment name is too long" in errors, result.stderr


def _check_outputs_by_deployment(outputs: dict) -> None:
    """The outputs that named one stream, function or service are maps by deployment."""
    assert outputs["kinesis_streams"] == {
        d: {
            "ride_events": f"deploy-assets-stg-{d}-ride_events",
            "ride_predictions": f"deploy-assets-stg-{d}-ride_predictions",
            "shadow": f"deploy-assets-stg-{d}-ride_predictions_shadow",
        }
        for d in DEPLOYMENTS
    }
    assert outputs["stream_functions"] == {
        d: {kind: f"deploy-assets-stg-stream-{d}-{kind}" for kind in CONSUMER_ALIASES} for d in DEPLOYMENTS
    }
    assert {d: set(queues) for d, queues in outputs["stream_on_failure_queues"].items()} == {
        d: set(CONSUMER_ALIASES) for d in DEPLOYMENTS
    }
    assert outputs["web_services"] == {d: f"deploy-assets-stg-web-{d}" for d in DEPLOYMENTS}
    assert outputs["web_default_deployment"] == "yellow"
    assert outputs["web_deployment_urls"] == {d: f"{outputs['web_url']}/deployments/{d}" for d in DEPLOYMENTS}
    assert outputs["web_url"].startswith("http://")


ALERT_EMAIL = "data-oncall@deploy-assets.test"
OIDC_CLIENT_SECRET = "oidc-client-secret-of-the-test"


def _sign_in_variables(endpoint: str) -> list[str]:
    """What an operator creates before the apply: the UI's certificate (ACM) and the OIDC client secret
    (Secrets Manager), here in the emulator; returned as the variables that name them."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    certificate = session.client("acm", endpoint_url=endpoint).request_certificate(
        DomainName="dagster.deploy-assets.test"
    )["CertificateArn"]
    secret = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name="deploy-assets-stg/dagster-oidc-client-secret", SecretString=OIDC_CLIENT_SECRET
    )["ARN"]
    oidc = {
        "issuer": "https://login.deploy-assets.test",
        "authorization_endpoint": "https://login.deploy-assets.test/authorize",
        "token_endpoint": "https://login.deploy-assets.test/token",
        "user_info_endpoint": "https://login.deploy-assets.test/userinfo",
        "client_id": "dagster-editors",
        "client_secret_arn": secret,
    }
    return [f"-var=dagster_certificate_arn={certificate}", f"-var=dagster_oidc={json.dumps(oidc)}"]


def _check_applied_access_and_alerts(by_type: dict[str, list[dict]]) -> None:
    # Two webservers: the read-only one behind the UI load balancer's default listener, the full one behind the
    # editors' listener, which signs them in with the identity provider first.
    services = {s["name"]: s for s in by_type["aws_ecs_service"]}
    groups = {g["name"]: g["arn"] for g in by_type["aws_lb_target_group"]}
    readonly = services["deploy-assets-stg-webserver-readonly"]
    assert readonly["load_balancer"][0]["target_group_arn"] == groups["deploy-assets-stg-ui-readonly"]
    assert services["deploy-assets-stg-webserver"]["load_balancer"][0]["target_group_arn"] == groups["deploy-assets-stg-ui-editors"]
    definitions = {d["family"]: json.loads(d["container_definitions"])[0] for d in by_type["aws_ecs_task_definition"]}
    assert definitions["deploy-assets-stg-webserver-readonly"]["command"][-1] == "--read-only"
    assert "--read-only" not in definitions["deploy-assets-stg-webserver"]["command"]
    listeners = {listener["port"]: listener for listener in by_type["aws_lb_listener"]}
    editors = sorted(listeners[8443]["default_action"], key=lambda action: action["order"])
    assert [action["type"] for action in editors] == ["authenticate-oidc", "forward"]
    oidc = editors[0]["authenticate_oidc"][0]
    assert oidc["client_id"] == "dagster-editors" and oidc["client_secret"] == OIDC_CLIENT_SECRET
    assert editors[1]["target_group_arn"] == groups["deploy-assets-stg-ui-editors"]
    assert listeners[443]["default_action"][0]["target_group_arn"] == groups["deploy-assets-stg-ui-readonly"]

    # Each deployment's prediction service reads the API key from Secrets Manager; the Dagster code gets the
    # alerts topic.
    (key,) = by_type["aws_secretsmanager_secret"]
    for deployment in DEPLOYMENTS:
        web = definitions[f"deploy-assets-stg-web-{deployment}"]
        assert web["secrets"] == [{"name": "DEPLOY_ASSETS_API_KEY", "valueFrom": key["arn"]}], deployment
    (topic,) = by_type["aws_sns_topic"]
    assert topic["kms_master_key_id"] and [s["endpoint"] for s in by_type["aws_sns_topic_subscription"]] == [ALERT_EMAIL]
    for family in ("deploy-assets-stg-code-location", "deploy-assets-stg-run"):
        environment = {e["name"]: e["value"] for e in definitions[family]["environment"]}
        assert environment["DEPLOY_ASSETS_ALERT_SNS_TOPIC_ARN"] == topic["arn"], family


def _check_emulator_state(endpoint: str, by_type: dict[str, list[dict]]) -> None:
    """The same, asked of the emulator's APIs (what terraform created is really there)."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    lambdas = session.client("lambda", endpoint_url=endpoint)
    for deployment, model_name in DEPLOYMENTS.items():
        stream_arn = next(s["arn"] for s in by_type["aws_kinesis_stream"] if s["name"] == f"deploy-assets-stg-{deployment}-ride_events")
        mappings = lambdas.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
        assert len(mappings) == 2 and all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
        assert {m["FunctionArn"].rsplit(":", 1)[-1] for m in mappings} == {
            f"deploy-assets-stg-stream-{deployment}-{kind}" for kind in CONSUMER_ALIASES
        }
        for kind in CONSUMER_ALIASES:
            configuration = lambdas.get_function_configuration(FunctionName=f"deploy-assets-stg-stream-{deployment}-{kind}")
            assert configuration["Environment"]["Variables"]["DEPLOY_ASSETS_MODEL_NAME"] == model_name
    elbv2 = session.client("elbv2", endpoint_url=endpoint)
    balancers = {lb["LoadBalancerName"]: lb for lb in elbv2.describe_load_balancers()["LoadBalancers"]}
    assert set(balancers) == {"deploy-assets-stg-web", "deploy-assets-stg-ui"}
    assert {lb["Scheme"] for lb in balancers.values()} == {"internal"}
    groups = {g["TargetGroupName"]: g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]}
    (web_listener,) = elbv2.describe_listeners(LoadBalancerArn=balancers["deploy-assets-stg-web"]["LoadBalancerArn"])["Listeners"]
    routes = {
        pattern: rule["Actions"][0]["TargetGroupArn"]
        for rule in elbv2.describe_rules(ListenerArn=web_listener["ListenerArn"])["Rules"]
        for pattern in _path_patterns(rule["Conditions"])
    }
    assert routes == {f"/deployments/{d}/*": groups[f"deploy-assets-stg-web-{d}"] for d in DEPLOYMENTS}
    ecs = session.client("ecs", endpoint_url=endpoint)
    names = [f"deploy-assets-stg-web-{d}" for d in DEPLOYMENTS]
    described = ecs.describe_services(cluster="deploy-assets-stg", services=names)["services"]
    assert {s["serviceName"]: s["loadBalancers"][0]["targetGroupArn"] for s in described} == {n: groups[n] for n in names}
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancers["deploy-assets-stg-ui"]["LoadBalancerArn"])["Listeners"]
    editors = next(listener for listener in listeners if listener["Port"] == 8443)
    assert [a["Type"] for a in sorted(editors["DefaultActions"], key=lambda a: a.get("Order", 0))] == [
        "authenticate-oidc", "forward",
    ]
    sns = session.client("sns", endpoint_url=endpoint)
    (topic,) = [t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":deploy-assets-stg-alerts")]
    assert [s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]] == [ALERT_EMAIL]


def _excludable_resources() -> list[str]:
    variable = root().variables["excluded_resources"]
    condition = _block(variable, "validation")["condition"]
    return re.findall(r'"([a-z_]+)"', condition.split("setsubtract", 1)[1])


def test_emulator_exclusions_are_empty_on_aws_and_only_remove_what_the_gaps_list():
    assert root().variables["excluded_resources"]["default"] == []
    for env in ("stg", "prod"):
        assert "excluded_resources" not in _tfvars(env), env
    assert set(_excludable_resources()) == set(EMULATOR_GAPS)
    # The autoscaling it removes on moto: a target on the web service and two target-tracking policies.
    target = root().of_type("aws_appautoscaling_target")["web"]
    assert "aws_ecs_service.web[each.key].name" in target["resource_id"] and target["scalable_dimension"] == "ecs:service:DesiredCount"
    assert target["for_each"] == '${contains(var.excluded_resources, "web_autoscaling") ? {} : var.deployments}'
    policies = root().of_type("aws_appautoscaling_policy")
    metrics = {
        _block(_block(p, "target_tracking_scaling_policy_configuration"), "predefined_metric_specification")[
            "predefined_metric_type"
        ]
        for p in policies.values()
    }
    assert metrics == {"ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"}


def _checkov() -> str:
    candidates = [os.environ.get("CHECKOV"), str(REPO / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "checkov not found: python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov "
        "(scripts/bootstrap.sh --dev does this)"
    )


def _run_checkov(checkov: str, *args: str) -> dict:
    # --skip-download: no call to the vendor's API (no network here, and nothing to send anywhere).
    command = [checkov, *args, "--compact", "--skip-download", "--output", "json"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert result.returncode in (0, 1), f"{' '.join(command)} crashed:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports, f"checkov scanned nothing: {' '.join(args)}"
    return {r["check_type"]: r for r in reports}


@pytest.fixture(scope="module")
def checkov_reports():
    checkov = _checkov()
    scans = {
        "defaults": ("--directory", "terraform", "--framework", "terraform"),
        "prod": ("--directory", "terraform", "--framework", "terraform", "--var-file", "terraform/envs/prod.tfvars"),
        "stg": ("--directory", "terraform", "--framework", "terraform", "--var-file", "terraform/envs/stg.tfvars"),
        "dockerfile": ("--file", "Dockerfile", "--framework", "dockerfile"),
    }
    with ThreadPoolExecutor(max_workers=min(len(scans), os.cpu_count() or 1)) as pool:
        futures = {name: pool.submit(_run_checkov, checkov, *args) for name, args in scans.items()}
        return {name: future.result() for name, future in futures.items()}


def _failed(report: dict) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in report["results"]["failed_checks"]
    ]


@pytest.mark.servers  # starts real processes
@pytest.mark.parametrize("scan", ["defaults", "prod", "dockerfile"])
def test_checkov_finds_nothing(checkov_reports, scan):
    (report,) = checkov_reports[scan].values()
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > (50 if scan == "dockerfile" else 300)
    assert _failed(report) == [], "\n".join(_failed(report))


@pytest.mark.servers  # starts real processes
def test_checkov_staging_departs_only_where_documented(checkov_reports):
    (report,) = checkov_reports["stg"].values()
    unexpected = [f for f in _failed(report) if f.split()[0] not in STAGING_RELAXATIONS]
    assert unexpected == [], "\n".join(unexpected)


def test_every_checkov_skip_is_justified_in_place():
    pattern = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")
    skips = []
    for path in [DOCKERFILE, *TERRAFORM.rglob("*.tf")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in pattern.finditer(line):
                skips.append((f"{path.relative_to(REPO)}:{number}", match.group(1), (match.group(2) or "").strip()))
    assert skips
    for where, check, reason in skips:
        assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), where
        assert len(reason) >= 30, f"{where}: {check} needs a reason after the colon"


# ---- Dagster production instance -----------------------------------------------------------------------

PROD_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_ECS_CLUSTER": "deploy-assets-test",
    "DAGSTER_RUN_TASK_DEFINITION": "deploy-assets-test-run",
    "DAGSTER_COMPUTE_LOGS_BUCKET": "deploy-assets-test-dagster",
    "DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
}


@pytest.fixture
def prod_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROD_INSTANCE, home / "dagster.yaml")
    for name, value in PROD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


def _class_data(ref):
    from dagster._serdes.config_class import ConfigurableClassData

    return {
        field.removesuffix("_data"): value
        for field, value in zip(ref._fields, ref)
        if isinstance(value, ConfigurableClassData)
    }


def test_prod_instance_config_resolves_to_the_intended_classes(prod_home):
    """What loading the instance does, short of connecting: schema, class import, each class's config."""
    import importlib

    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.ref import InstanceRef

    ref = InstanceRef.from_dir(str(prod_home))
    classes = _class_data(ref)
    for role, data in classes.items():
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
        assert result.success, f"{role}: {[e.message for e in result.errors]}"
    names = {role: f"{data.module_name}.{data.class_name}" for role, data in classes.items()}
    assert names["storage"] == "dagster_postgres.DagsterPostgresStorage"
    assert names["run_launcher"] == "dagster_aws.ecs.EcsRunLauncher"
    assert names["compute_logs"] == "dagster_aws.s3.compute_log_manager.S3ComputeLogManager"
    assert names["run_coordinator"] == "dagster._core.run_coordinator.QueuedRunCoordinator"

    settings = ref.settings
    assert settings["telemetry"]["enabled"] is False
    runs = settings["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == 10
    assert runs["tag_concurrency_limits"]

    storage = process_config(
        resolve_to_config_type(
            getattr(importlib.import_module("dagster_postgres"), "DagsterPostgresStorage").config_type()
        ),
        classes["storage"].config_dict,
    ).value
    assert storage["postgres_db"]["password"] == PROD_ENV["DAGSTER_PG_PASSWORD"]
    assert storage["postgres_db"]["port"] == 5432


def test_prod_instance_config_reads_its_secrets_from_the_environment(prod_home, monkeypatch):
    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.ref import InstanceRef
    from dagster_postgres import DagsterPostgresStorage

    assert "not-a-secret" not in PROD_INSTANCE.read_text()
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    data = _class_data(InstanceRef.from_dir(str(prod_home)))["storage"]
    result = process_config(resolve_to_config_type(DagsterPostgresStorage.config_type()), data.config_dict)
    assert not result.success and "DAGSTER_PG_PASSWORD" in str([e.message for e in result.errors])


def test_ecs_run_launcher_builds_from_the_prod_config(prod_home):
    """The launcher's constructor checks run_task_kwargs keys and the `run` container of the task definition."""
    import boto3
    from dagster._core.instance.ref import InstanceRef
    from moto import mock_aws

    with mock_aws():
        boto3.client("ecs").register_task_definition(
            family=PROD_ENV["DAGSTER_RUN_TASK_DEFINITION"],
            containerDefinitions=[{"name": "run", "image": "deploy-assets:test", "essential": True}],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="4096",
        )
        classes = _class_data(InstanceRef.from_dir(str(prod_home)))
        launcher = classes["run_launcher"].rehydrate()
        assert launcher.task_definition.endswith(f"task-definition/{PROD_ENV['DAGSTER_RUN_TASK_DEFINITION']}:1")
        assert launcher.container_name == "run"
        assert launcher.run_task_kwargs == {"cluster": PROD_ENV["DAGSTER_ECS_CLUSTER"]}
        assert launcher.secrets_tags == []
        compute_logs = classes["compute_logs"].rehydrate()
        assert compute_logs._s3_bucket == PROD_ENV["DAGSTER_COMPUTE_LOGS_BUCKET"]


def test_terraform_sets_every_variable_the_prod_instance_reads():
    referenced = set(re.findall(r"env:\s*(\w+)", PROD_INSTANCE.read_text()))
    assert referenced == set(PROD_ENV)
    env = set(root().locals["dagster_environment"])
    secrets = {s["name"] for s in root().locals["dagster_secrets"]}
    # PGPASSWORD is not read by the instance: libpq reads it for the predictions table (DEPLOY_ASSETS_PREDICTIONS_DB).
    assert referenced == (env | secrets) - {"AWS_REGION", "AWS_DEFAULT_REGION", "PGPASSWORD"}
    assert secrets == {"DAGSTER_PG_PASSWORD", "PGPASSWORD"}
    assert {s["valueFrom"] for s in root().locals["dagster_secrets"]} == {
        "${aws_db_instance.dagster.master_user_secret[0].secret_arn}:password::"
    }


def test_prod_workspace_points_at_the_code_location_service():
    (entry,) = yaml.safe_load(PROD_WORKSPACE.read_text())["load_from"]
    server = entry["grpc_server"]
    assert server == {"host": "code-location", "port": 4000, "location_name": "deploy_assets"}
    service = root().of_type("aws_ecs_service")["code_location"]
    alias = _block(_block(_block(service, "service_connect_configuration"), "service"), "client_alias")
    assert (alias["dns_name"], alias["port"]) == (server["host"], server["port"])


# ---- Dockerfile -----------------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stage(instructions: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    starts = [i for i, (op, arg) in enumerate(instructions) if op == "FROM"]
    for index, start in enumerate(starts):
        if instructions[start][1].endswith(f" AS {name}"):
            end = starts[index + 1] if index + 1 < len(starts) else len(instructions)
            return instructions[start:end]
    raise AssertionError(f"no stage {name}")


def test_dockerfile_is_multi_stage_non_root_and_runs_the_code_server():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    froms = [arg for op, arg in instructions if op == "FROM"]
    # `runtime` last: a plain `docker build .` builds the Dagster image, as before.
    assert froms == [
        "${BASE_IMAGE} AS builder", "${BASE_IMAGE} AS serving-builder", "${BASE_IMAGE} AS serving", "${BASE_IMAGE} AS runtime",
    ]
    runtime = _stage(instructions, "runtime")
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert ("EXPOSE", "4000") in runtime
    cmd = json.loads(next(arg for op, arg in runtime if op == "CMD"))
    assert cmd == ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "deploy_assets.definitions"]
    healthcheck = next(arg for op, arg in runtime if op == "HEALTHCHECK")
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    assert probe == ["dagster", "api", "grpc-health-check", "-p", "4000"]
    assert not re.search(r"(?i)(aws_secret|password|token)\s*=", DOCKERFILE.read_text())

    # Both are commands the installed dagster CLI parses.
    from click.testing import CliRunner
    from dagster._cli import cli

    for argv in (cmd, probe):
        command, args = cli, argv[1:]
        while args and hasattr(command, "commands") and args[0] in command.commands:
            command, args = command.commands[args[0]], args[1:]
        context = command.make_context(command.name, list(args), resilient_parsing=False)
        assert context.params, argv
    assert CliRunner().invoke(cli, ["code-server", "start", "--help"]).exit_code == 0


def test_serving_image_runs_the_web_service_and_the_lambda_handler_without_dagster():
    import importlib
    from importlib.metadata import entry_points

    serving = _stage(_dockerfile_instructions(), "serving")
    assert ("COPY", "--from=serving-builder /opt/venv /opt/venv") in serving
    assert [arg for op, arg in serving if op == "USER"][-1].split(":")[0] not in {"root", "0"}
    cmd = json.loads(next(arg for op, arg in serving if op == "CMD"))
    assert cmd == ["deploy-assets-web", "--host", "0.0.0.0", "--port", "9696"]
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["deploy-assets-web"] == "deploy_assets.serving.web:main"
    # What terraform/web.tf runs, and what terraform/lambda.tf points the function at (entry point + handler).
    assert '"deploy-assets-web", "--host", "0.0.0.0", "--port"' in (TERRAFORM / "web.tf").read_text()
    function = root().of_type("aws_lambda_function")["stream"]
    image_config = _block(function, "image_config")
    assert image_config["entry_point"] == ["python", "-m", "awslambdaric"]
    module_name, attribute = image_config["command"][0].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module_name), attribute))
    importlib.import_module("awslambdaric.bootstrap")  # the runtime interface client the entry point runs
    # The serving venv gets the project without its dependencies, then only the serving set and awslambdaric.
    builder = " ".join(arg for _, arg in _stage(_dockerfile_instructions(), "serving-builder"))
    assert "setup.py --serving-requirements" in builder and "pip install --no-deps /build/dist/deploy_assets-" in builder
    assert "dagster" not in subprocess.run(
        [sys.executable, "setup.py", "--serving-requirements"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


# ---- the lock: constraints.txt ------------------------------------------------------------------------------


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==")
            pins[_canonical(name)] = version
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_pip_install_in_the_dockerfile_is_constrained_by_the_lock():
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    installs = re.findall(r"pip install ([^&\n]+)", text)
    assert len(installs) >= 4
    for install in installs:
        if "--upgrade pip setuptools wheel" in install:
            continue  # build tools, uninstalled before the stage ends
        assert "-c constraints.txt" in install or install.strip().startswith("--no-deps"), install
    assert "COPY constraints.txt ./" in text
    assert "-c constraints.txt" in (REPO / "scripts" / "bootstrap.sh").read_text(), "the dev venv installs the lock too"


def test_the_lock_pins_every_dependency_and_the_tests_ran_with_it():
    """Every requirement (install_requires, serving, lambda, dev), and everything they pull in, has a pin that
    satisfies it, and the venv running these tests has exactly the pinned versions: what the images install is
    what was tested. Refresh with `.venv/bin/python scripts/lock.py` (README, "Reproducible images")."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    header = (REPO / "constraints.txt").read_text().splitlines()[0]
    assert "scripts/lock.py" in header
    pins = _lock()
    problems, seen = [], set()
    pending = [(Requirement(r), "deploy_assets") for r in distribution("deploy_assets").requires or []]
    extras = {"serving", "lambda", "dev"}
    while pending:
        requirement, parent = pending.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in (extras if parent == "deploy_assets" else {""} | set(requirement.extras))
        ):
            continue
        name = _canonical(requirement.name)
        version = pins.get(name)
        if version is None:
            problems.append(f"{requirement} (needed by {parent}) is not in constraints.txt")
            continue
        if version not in requirement.specifier:
            problems.append(f"{requirement} (needed by {parent}) is not satisfied by the pin {version}")
        try:
            installed = distribution(requirement.name)
        except PackageNotFoundError:
            problems.append(f"{name}=={version} is locked but not installed in this venv: bash scripts/bootstrap.sh --dev")
            continue
        if installed.version != version:
            problems.append(f"{name}: the venv has {installed.version}, the lock {version}")
        if name in seen:
            continue
        seen.add(name)
        pending.extend(
            (Requirement(r), name) for r in installed.requires or []
            if Requirement(r).marker is None or Requirement(r).marker.evaluate({"extra": ""})
            or any(Requirement(r).marker.evaluate({"extra": e}) for e in requirement.extras)
        )
    assert not problems, "\n".join(sorted(set(problems)))
    assert {"dagster", "mlflow", "boto3", "awslambdaric", "fastapi"} <= seen


def test_dockerignore_is_an_allow_list():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    assert allowed == {"setup.py", "constraints.txt", "deploy_assets/", "deploy/dagster.prod.yaml", "deploy/workspace.yaml"}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
