"""The terraform binary accepts the configuration: `fmt -check`, `validate` against the AWS provider's schema, and
a real `init / apply / show / output / destroy` of envs/stg.tfvars against a moto server, whose result is checked
in terraform's state and through the emulator's APIs; what moto cannot create is excluded only there.

Each test skips, saying why, where there is no terraform binary or no local mirror of the hashicorp/aws provider.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy_assets_tests.terraform_hcl import TERRAFORM, _block, _tfvars, root

# ---- terraform fmt, validate --------------------------------------------------------------------------------


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
    return f"""# Written by deploy_assets_tests/test_terraform_apply.py: state on local disk, every AWS API on the emulator.
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


# The deployments of terraform/variables.tf's default map (the YAML ones, see test_terraform_static.py,
# test_the_deployments_map_...):
# each has its own streams, stream functions, web service and target group.
DEPLOYMENTS = {"yellow": "trip-duration", "green": "green-trip-duration", "fhv": "fhv-trip-duration"}
# Each one's rides (dataset, missing zones), as its defs.yaml declares them: what its services validate requests as.
RIDES = {"yellow": ("yellow", "drop"), "green": ("green", "drop"), "fhv": ("fhv", "keep")}
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
        assert (env["DEPLOY_ASSETS_DATASET"], env["DEPLOY_ASSETS_MISSING_ZONES"]) == RIDES[deployment], name
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
        assert (environment["DEPLOY_ASSETS_DATASET"], environment["DEPLOY_ASSETS_MISSING_ZONES"]) == RIDES[deployment]
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
