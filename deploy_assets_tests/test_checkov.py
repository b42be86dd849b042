"""checkov finds nothing over terraform/ (defaults and prod.tfvars) and the Dockerfile; staging departs from
production only where STAGING_RELAXATIONS says why; every `checkov:skip` carries its reason in place.

checkov lives in its own venv (.venv-checkov, see scripts/bootstrap.sh) because of its pins; it runs offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from deploy_assets_tests.terraform_hcl import DOCKERFILE, REPO, TERRAFORM

# Where envs/stg.tfvars deliberately departs from the production defaults (cost over resilience).
STAGING_RELAXATIONS = {
    "CKV_AWS_338": "30-day log retention",
    "CKV_AWS_293": "no deletion protection",
    "CKV_AWS_150": "no deletion protection (the web load balancer)",
    "CKV_AWS_157": "single-AZ database",
    "CKV_AWS_353": "no Performance Insights on the smallest instance class",
}


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
