#!/usr/bin/env python3
"""One month launched through the real dagster-daemon: wall time from launch to success, and where it goes.

    .venv/bin/python bench/daemon_month.py                     # 200,000 rows, 3 launches, ~3 min on 2 cores
    .venv/bin/python bench/daemon_month.py --rows 50000 --repeat 1 --keep /tmp/daemon-month   # smoke run
    .venv/bin/python bench/daemon_month.py --dataset green     # green months, the `green` deployment's job

What it does, every process it starts stopped at the end (deploy_assets_tests/servers.py's ManagedProcess):
1. An isolated world in a temp folder: DAGSTER_HOME (a copy of the repo's dagster.yaml: queued run coordinator,
   at most two runs, one per partition), data folder, MLflow sqlite store, DuckDB file; first partition 2024-01.
2. The sensors that report or request runs (`<name>_landing_sensor`, `<name>_automation_sensor`,
   `<name>_champion_sensor` of every deployment declared under deploy_assets/defs/) are stopped (`dagster sensor
   stop … -w workspace.yaml`) before anything lands, so only the launches below run; January and February 2024
   (files of --dataset, default yellow: the deployment of that name is measured; the code location loads every
   declared deployment, as shipped) are generated (--rows each) into the landing folder.
3. `dagster-daemon run` and `dagster-webserver` start (the UI's server: the launch goes through its GraphQL).
4. January is ingested by a launched run (`<name>/raw_trips` + `<name>/trip_statistics` only, not timed). The
   MLflow store is created (not timed), as it exists in any deployment after its first model (the measured
   deployment's registered model, e.g. `trip-duration` for yellow, `green-trip-duration` for green).
5. February, --repeat times: the GraphQL mutation `launchRun` the UI sends for "Materialize all" of one
   partition of the job `<name>_month_end_to_end` (ingest, duration_model, model_promotion, trip_predictions,
   prediction_table; checks in their steps), each launch with its own model `smoothing` (1e-9 apart) so every
   run trains and registers a model like a month's first run. Timed from just before the POST to the run's
   RUN_SUCCESS event; the run's event log gives the phases:
     submit     POST → RUN_ENQUEUED          (the webserver creates the run and its plan)
     queued     RUN_ENQUEUED → RUN_STARTING  (until the daemon's run coordinator dequeues and launches it)
     launch     RUN_STARTING → RUN_START     (run worker process: Python, Dagster, the code location)
     steps      STEP_START → STEP_SUCCESS of every step (instance.get_run_step_stats), and between them
     finish     last step end → RUN_SUCCESS
   Launches are one after another (the next once the previous succeeded); the median is reported.

Last line: `DAEMON_JSON {...}`. Target: ≤ 20 s from launch to success for 200,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy_assets.core.datasets import DATASETS  # noqa: E402
from deploy_assets.core.months import Month  # noqa: E402
from deploy_assets.settings import TLC_DATASETS  # noqa: E402
from deploy_assets_tests import servers  # noqa: E402  (no Dagster import: plain subprocess helpers)

# The deployment measured by default (--dataset: the deployment named after the months' TLC service, whose files
# are generated: yellow_tripdata_YYYY-MM.parquet for yellow, green_tripdata_… for green).
DEPLOYMENT = "yellow"
REPOSITORY = {"repositoryLocationName": "deploy_assets", "repositoryName": "__repository__"}
# Each deployment's sensors that report or request runs (`<name>_<sensor>`); the alert sensors only send messages.
SENSORS = ("landing_sensor", "automation_sensor", "champion_sensor")
TRAINING_MONTH, MONTH = "2024-01-01", "2024-02-01"
# Variables that would point the processes somewhere other than the temp folder.
OVERRIDES = (
    "DEPLOY_ASSETS_LANDING_URI", "DEPLOY_ASSETS_WAREHOUSE_URI", "DEPLOY_ASSETS_PREDICTIONS_URI",
    "DEPLOY_ASSETS_SHADOW_PREDICTIONS_URI", "DEPLOY_ASSETS_MLFLOW_ARTIFACTS", "AWS_ENDPOINT_URL",
    "DEPLOY_ASSETS_SCORING_POLICY", "DEPLOY_ASSETS_MODEL_NAME",
)

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""


def environment(root: Path, first_month: str = TRAINING_MONTH, **extra: str) -> dict[str, str]:
    """A project whose every location is under `root` (shared with bench/automation_month.py); `extra` adds
    variables."""
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    env.update(
        DAGSTER_HOME=str(root / "dagster_home"),
        DEPLOY_ASSETS_DATA_URI=str(root / "data"),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
        DEPLOY_ASSETS_PREDICTIONS_DB=f"duckdb:///{root / 'predictions.duckdb'}",
        DEPLOY_ASSETS_FIRST_MONTH=first_month,
        DEPLOY_ASSETS_TRAINING_MONTHS="1",
        **extra,
    )
    return servers.child_env(env)


def asset_path(asset: str, deployment: str = DEPLOYMENT) -> list[str]:
    """The deployment's asset `asset` (`yellow/raw_trips`) as a key path."""
    return [deployment, asset]


def job_name(deployment: str) -> str:
    """The deployment's job of a whole month (`yellow_month_end_to_end`)."""
    return f"{deployment}_month_end_to_end"


def sensors_to_stop() -> list[str]:
    """`<name>_<sensor>` of SENSORS for every deployment the code location declares (deploy_assets/defs/)."""
    from deploy_assets.declared import declared_settings

    return [f"{name}_{sensor}" for name in declared_settings() for sensor in SENSORS]


def run_command(env: dict, *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        list(args), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done.stdout


class Webserver:
    def __init__(self, env: dict, log_dir: Path):
        self.port = servers.free_port()
        self.process = servers.ManagedProcess(
            f"dagster-webserver-{self.port}",
            [servers.binary("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            log_dir=log_dir, env=env, cwd=ROOT,
        ).start()

    def wait(self, timeout: float = 180) -> None:
        def answers() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/server_info", timeout=2) as response:  # noqa: S310
                return response.status == 200

        self.process.wait_until(answers, timeout, "200 from GET /server_info", interval=0.5)

    def graphql(self, query: str, variables: dict) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback only
            body = json.loads(response.read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def launch(self, partition: str, assets: list[str] | None, run_config: dict, deployment: str) -> str:
        selector = {**REPOSITORY, "pipelineName": job_name(deployment)}
        if assets:
            selector["assetSelection"] = [{"path": asset_path(name, deployment)} for name in assets]
        params = {
            "selector": selector,
            "runConfigData": run_config,
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        answer = self.graphql(LAUNCH_RUN, {"executionParams": params})["launchRun"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun: {answer}")
        return answer["run"]["runId"]


def wait_for_run(instance, run_id: str, processes: list, timeout: float = 600) -> None:
    import dagster as dg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run.status == dg.DagsterRunStatus.SUCCESS:
            return
        if run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            failures = [e.message for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.is_failure]
            raise RuntimeError(f"run {run_id} {run.status}: {failures[:4]}")
        time.sleep(0.05)
    tails = "\n".join(p.log_tail(40) for p in processes)
    raise RuntimeError(f"run {run_id} not finished after {timeout} s\n{tails}")


def phases(instance, run_id: str, launched_at: float) -> dict:
    """Seconds of each phase of one run, from its event log (timestamps are epoch seconds)."""
    import dagster as dg

    kind = dg.DagsterEventType
    first: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is not None:
            first.setdefault(entry.dagster_event.event_type_value, entry.timestamp)
    at = {name: first.get(getattr(kind, name).value) for name in ("RUN_ENQUEUED", "RUN_STARTING", "RUN_START", "RUN_SUCCESS")}
    stats = [s for s in instance.get_run_step_stats(run_id) if s.start_time and s.end_time]
    steps = {s.step_key: s.end_time - s.start_time for s in stats}
    steps_start, steps_end = min(s.start_time for s in stats), max(s.end_time for s in stats)

    def between(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else b - a

    return {
        "launch_to_success_s": between(launched_at, at["RUN_SUCCESS"]),
        "post_to_enqueued_s": between(launched_at, at["RUN_ENQUEUED"]),  # the webserver creates the run and its plan
        "queued_s": between(at["RUN_ENQUEUED"], at["RUN_STARTING"]),  # until the run coordinator dequeues it
        "launch_worker_s": between(at["RUN_STARTING"], at["RUN_START"]),  # run worker: Python, Dagster, code location
        "before_first_step_s": between(at["RUN_START"], steps_start),
        "steps_wall_s": steps_end - steps_start,
        "steps_sum_s": sum(steps.values()),
        "after_last_step_s": between(steps_end, at["RUN_SUCCESS"]),
        "step_seconds": steps,
    }


def generate(env: dict, year: int, month: int, rows: int, folder: Path, dataset: str) -> None:
    run_command(
        env, sys.executable, "-m", "deploy_assets.core.generate", "--year", str(year), "--month", str(month),
        "--months", "1", "--rows", str(rows), "--out", str(folder), "--dataset", dataset,
    )


def prewarm_mlflow(env: dict, deployment: str) -> None:
    """The MLflow store as any deployment has it after its first model: schema, experiment, registered model (the
    measured deployment's, as the code location declares it: its defs.yaml's model name)."""
    run_command(env, sys.executable, "-c", (
        "from deploy_assets.assets.monthly import Deployment\n"
        "from deploy_assets.declared import deployment_settings\n"
        "from deploy_assets.resources import build_resources\n"
        f"settings = deployment_settings({deployment!r})\n"
        "r = Deployment(settings).model(build_resources(settings)['registry'])\n"
        "c = r._client()\nr._experiment_id(c)\nr._ensure_registered_model(c)\n"
    ))


def latest_event_time(
    instance, asset: str, partition: str, deployment: str, observation: bool = False
) -> float | None:
    import dagster as dg

    key = dg.AssetKey(asset_path(asset, deployment))
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition])
    fetch = instance.fetch_observations if observation else instance.fetch_materializations
    records = fetch(records_filter, limit=1).records
    return records[0].timestamp if records else None


def automatic(args) -> dict:
    """The automatic path, in a world of its own: the sensors RUNNING at their interval; January lands and is
    ingested by automation, then each measured month lands (written beside, then renamed into the landing folder:
    it appears whole) and the time to its prediction_table materialization is taken, with every run it caused."""
    import dagster as dg

    root = Path(args.keep).resolve() / "automatic" if args.keep else Path(tempfile.mkdtemp(prefix="daemon-auto-"))
    root.mkdir(parents=True, exist_ok=True)
    env = environment(root)
    env["DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS"] = str(args.sensor_interval)
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    landing, staging = root / "data" / "landing", root / "staging"
    name = args.dataset  # the deployment measured, named after its months' dataset
    report: dict = {"rows": args.rows, "sensor_interval_s": args.sensor_interval, "months": [], "dataset": name}
    processes: list[servers.ManagedProcess] = []
    loads = [os.getloadavg()]
    try:
        home = servers.prepare_dagster_home(root / "dagster_home")
        generate(env, 2024, 1, args.rows, landing, name)
        prewarm_mlflow(env, name)
        processes.append(servers.start_dagster_daemon(home, env=env, workspace=ROOT / "workspace.yaml", log_dir=root))
        instance = dg.DagsterInstance.get()

        def wait(what: str, predicate, timeout: float = 600):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                value = predicate()
                if value:
                    return value
                time.sleep(0.2)
            raise RuntimeError(f"no {what} after {timeout} s\n" + processes[0].log_tail(60))

        def settled() -> bool:
            return not instance.get_runs(filters=dg.RunsFilter(statuses=[
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED]))

        wait("raw_trips[2024-01-01]", lambda: latest_event_time(instance, "raw_trips", TRAINING_MONTH, name))
        wait("no run in progress", settled)
        for landed_month in Month.from_key(MONTH).span(args.automatic_months):
            year, month, key = *landed_month.pair, landed_month.key
            generate(env, year, month, args.rows, staging, name)
            time.sleep(max(1.0, args.sensor_interval / 3))  # land at an arbitrary point of the sensors' cycle
            loads.append(os.getloadavg())
            file = DATASETS[name].file_name(landed_month)
            landed = time.time()
            os.replace(staging / file, landing / file)
            table_at = wait(f"prediction_table[{key}]", lambda: (t := latest_event_time(
                instance, "prediction_table", key, name)) and t > landed and t)
            wait("no run in progress", settled)
            loads.append(os.getloadavg())
            runs = [r for r in instance.get_runs(filters=dg.RunsFilter(created_after=datetime_from(landed)))]
            detail = []
            for run in sorted(runs, key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp):
                record = instance.get_run_record_by_id(run.run_id)
                detail.append({
                    "run_id": run.run_id,
                    "assets": sorted(k.to_user_string() for k in (run.asset_selection or [])),
                    "status": str(run.status),
                    "created_after_landing_s": record.create_timestamp.timestamp() - landed,
                    **(phases(instance, run.run_id, record.create_timestamp.timestamp())
                       if run.status == dg.DagsterRunStatus.SUCCESS else {}),
                })
            observed = latest_event_time(instance, "landing_file", key, name, observation=True)
            materialized = {
                asset: latest_event_time(instance, asset, key, name) - landed
                for asset in ("raw_trips", "duration_model", "model_promotion", "trip_predictions", "prediction_table")
            }
            report["months"].append({
                "month": key,
                "landing_to_observation_s": observed - landed if observed else None,
                "observation_to_table_s": table_at - observed if observed else None,
                "landing_to_table_s": table_at - landed,
                "materialized_after_landing_s": materialized,
                "runs": detail,
            })
            print(f"[daemon_month] automatic {key}: landed → prediction_table {table_at - landed:.1f} s,"
                  f" {len(detail)} runs", file=sys.stderr, flush=True)
    finally:
        for process in reversed(processes):
            try:
                process.stop(timeout=20)
            except Exception as error:
                print(f"[daemon_month] stopping {process.name}: {error}", file=sys.stderr)
        loads.append(os.getloadavg())
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report["loadavg"] = loads
    return report


def datetime_from(epoch: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def print_automatic(report: dict) -> None:
    print(f"\nAutomatic path, {report['dataset']} deployment, {report['rows']:,} rows a month, sensors every"
          f" {report['sensor_interval_s']} s:")
    for month in report["months"]:
        print(f"  {month['month']}: landed → observed {fmt(month['landing_to_observation_s'])} s, observed →"
              f" prediction_table {fmt(month['observation_to_table_s'])} s, landed → table {month['landing_to_table_s']:.1f} s;"
              " materialized after landing: "
              + ", ".join(f"{k} {v:.1f}" for k, v in month["materialized_after_landing_s"].items()))
        for run in month["runs"]:
            print(f"    run {run['run_id'][:8]} created +{run['created_after_landing_s']:.1f} s, "
                  f"{','.join(run['assets'])}: {run['status']}"
                  + (f", {run['launch_to_success_s']:.1f} s to success (steps {run['steps_sum_s']:.1f} s)"
                     if "launch_to_success_s" in run else ""))
    loads = [load[0] for load in report["loadavg"]]
    print(f"  1-min load average: {min(loads):.1f}–{max(loads):.1f}")


def fmt(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of each month (January, February)")
    parser.add_argument("--dataset", choices=TLC_DATASETS, default=DEPLOYMENT,
                        help="the months' TLC service and the deployment measured, named after it (default yellow)")
    parser.add_argument("--repeat", type=int, default=3, help="launches of February; the median is reported")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder, deleted)")
    parser.add_argument("--automatic", action="store_true",
                        help="instead: the automatic path (sensors running), from a month landing to its table")
    parser.add_argument("--automatic-months", type=int, default=1, help="months landed one after another")
    parser.add_argument("--sensor-interval", type=int, default=30,
                        help="DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS for --automatic (default 30, the project's)")
    args = parser.parse_args(argv)
    if args.automatic:
        report = automatic(args)
        print_automatic(report)
        print("DAEMON_AUTO_JSON " + json.dumps(report, sort_keys=True))
        return

    root = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="daemon-month-"))
    root.mkdir(parents=True, exist_ok=True)
    env = environment(root)
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME",)})  # this process reads the run's event log
    processes: list[servers.ManagedProcess] = []
    name = args.dataset  # the deployment measured, named after its months' dataset
    report: dict = {"rows": args.rows, "repeat": args.repeat, "cpus": os.cpu_count(), "dataset": name}
    loads = [os.getloadavg()]
    try:
        home = servers.prepare_dagster_home(root / "dagster_home")
        servers.initialize_dagster_instance(home, env)
        sensors = sensors_to_stop()
        start = time.perf_counter()
        for sensor in sensors:  # before anything lands: only the launches below run
            run_command(env, servers.binary("dagster"), "sensor", "stop", "-w", "workspace.yaml", sensor)
        report["stop_sensors_s"], report["stopped_sensors"] = time.perf_counter() - start, sensors
        for year, month in ((2024, 1), (2024, 2)):
            generate(env, year, month, args.rows, root / "data" / "landing", name)
        prewarm_mlflow(env, name)

        start = time.perf_counter()
        daemon = servers.start_dagster_daemon(home, env=env, workspace=ROOT / "workspace.yaml", log_dir=root)
        processes.append(daemon)
        webserver = Webserver(env, root)
        processes.append(webserver.process)
        webserver.wait()
        report["start_daemon_and_webserver_s"] = time.perf_counter() - start

        import dagster as dg

        instance = dg.DagsterInstance.get()
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        launched = time.time()
        run_id = webserver.launch(TRAINING_MONTH, ["raw_trips", "trip_statistics"], quiet, name)
        wait_for_run(instance, run_id, processes)
        report["january_ingest"] = phases(instance, run_id, launched)

        runs = []
        for repeat in range(args.repeat):
            time.sleep(2.0)  # let the daemon and the webserver settle after the previous run
            loads.append(os.getloadavg())
            params = {"smoothing": 5.0 + (repeat + 1) * 1e-9}
            op = "__".join(asset_path("duration_model", name))  # the op of `<name>/duration_model`
            config = {**quiet, "ops": {op: {"config": {"params": params}}}}
            launched = time.time()
            start = time.perf_counter()
            run_id = webserver.launch(MONTH, None, config, name)
            wait_for_run(instance, run_id, processes)
            observed = time.perf_counter() - start
            run = {"run_id": run_id, "observed_success_s": observed, **phases(instance, run_id, launched)}
            runs.append(run)
            loads.append(os.getloadavg())
            print(f"[daemon_month] February launch {repeat + 1}: {run['launch_to_success_s']:.2f} s to RUN_SUCCESS"
                  f" (steps {run['steps_sum_s']:.2f} s)", file=sys.stderr, flush=True)
        report["runs"] = runs
    finally:
        for process in reversed(processes):
            try:
                process.stop(timeout=20)
            except Exception as error:  # report, keep stopping the others
                print(f"[daemon_month] stopping {process.name}: {error}", file=sys.stderr)
        loads.append(os.getloadavg())
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    ordered = sorted(runs, key=lambda r: r["launch_to_success_s"])
    median = ordered[(len(ordered) - 1) // 2]
    report["median_run"] = median
    report["launch_to_success_s_runs"] = [r["launch_to_success_s"] for r in runs]
    report["launch_to_success_s_median"] = statistics.median(report["launch_to_success_s_runs"])
    report["loadavg"] = loads
    report["target_le_20_s"] = report["launch_to_success_s_median"] <= 20.0
    print_report(report)
    print("DAEMON_JSON " + json.dumps(report, sort_keys=True))


def print_report(report: dict) -> None:
    print(f"\nOne {report['dataset']} month of {report['rows']:,} rows launched through dagster-daemon (GraphQL"
          f" launchRun, job {job_name(report['dataset'])})")
    print(f"{'run':<5} {'total':>7} {'queued':>7} {'launch':>7} {'→step':>7} {'steps':>7} {'finish':>7}   steps (s)")
    for index, run in enumerate(report["runs"], 1):
        steps = ", ".join(f"{k} {v:.2f}" for k, v in run["step_seconds"].items())
        print(
            f"{index:<5} {run['launch_to_success_s']:>7.2f} {run['post_to_enqueued_s'] + run['queued_s']:>7.2f}"
            f" {run['launch_worker_s']:>7.2f} {run['before_first_step_s']:>7.2f} {run['steps_wall_s']:>7.2f}"
            f" {run['after_last_step_s']:>7.2f}   {steps}"
        )
    m = report["median_run"]
    fixed = m["launch_to_success_s"] - m["steps_sum_s"]
    print(f"median launch → success {report['launch_to_success_s_median']:.2f} s; in the median run the steps' own"
          f" work is {m['steps_sum_s']:.2f} s and the fixed cost per run {fixed:.2f} s")
    print(f"january ingest run (not part of the target): {report['january_ingest']['launch_to_success_s']:.2f} s")
    loads = [load[0] for load in report["loadavg"]]
    print(f"1-min load average during the bench: {min(loads):.1f}–{max(loads):.1f} ({report['cpus']} CPUs)")
    print(f"target ≤ 20 s: {'MET' if report['target_le_20_s'] else 'MISSED'}")


if __name__ == "__main__":
    main()
