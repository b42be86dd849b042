"""The images and what they install: the Dockerfile's stages run as non-root the commands the installed CLIs
accept (the Dagster code server, the web service, the Lambda handler without dagster); every pip install is
constrained by constraints.txt, which pins every dependency at the versions these tests run with; .dockerignore
is an allow-list.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from deploy_assets_tests.terraform_hcl import DOCKERFILE, REPO, TERRAFORM, _block, root

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
