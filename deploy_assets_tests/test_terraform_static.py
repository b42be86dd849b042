"""The stack's security and wiring, read from the parsed HCL of terraform/ — no terraform binary, no cloud.

Private, encrypted, versioned buckets; a private encrypted database whose password RDS manages; IAM without
wildcard actions or unscoped resources; a webserver closed to the internet, editors signed in; encrypted logs,
streams and topic; the `deployments` map driving every online resource; immutable scanned images; a rotating key.
"""

from __future__ import annotations

from deploy_assets_tests.terraform_hcl import REPO, TERRAFORM, _as_list, _block, _tfvars, all_modules, bucket_module, root

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
    assert variable["type"] == (
        '${map(object({model_name = string, dataset = optional(string, "yellow"),'
        ' missing_zones = optional(string, "drop")}))}'
    )
    assert variable["default"] == {
        "yellow": {"model_name": "trip-duration"}, "green": {"model_name": "green-trip-duration", "dataset": "green"},
        "fhv": {"model_name": "fhv-trip-duration", "dataset": "fhv", "missing_zones": "keep"},
    }
    conditions = " ".join(v["condition"] for v in _as_list(variable["validation"]))
    assert 'regex("^[a-z][a-z0-9_]*$", name)' in conditions and "length(var.deployments) > 0" in conditions

    from deploy_assets.declared import declared_settings

    monkeypatch.delenv("DEPLOY_ASSETS_MODEL_NAME", raising=False)  # the shipped names, not a test's own
    declared = {name: settings.registered_model for name, settings in declared_settings().items()}
    assert declared == {name: entry["model_name"] for name, entry in variable["default"].items()}
    # Its rides as its defs.yaml declares them: what its web service and Lambdas validate requests against.
    rides = {name: (s.dataset, s.missing_zones) for name, s in declared_settings().items()}
    assert rides == {
        name: (entry.get("dataset", "yellow"), entry.get("missing_zones", "drop")) for name, entry in variable["default"].items()
    }
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
