"""deploy/dagster.prod.yaml, with its environment set, resolves to the intended classes and valid configs of the
installed dagster packages, reads its secrets from the environment, builds its EcsRunLauncher against a mocked
ECS, and terraform sets every variable it reads; deploy/workspace.yaml points at the code location service.
"""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from deploy_assets_tests.terraform_hcl import REPO, _block, root

PROD_INSTANCE = REPO / "deploy" / "dagster.prod.yaml"
PROD_WORKSPACE = REPO / "deploy" / "workspace.yaml"

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
