#!/usr/bin/env python3
"""Landing → published through automation: a real dagster-daemon with its sensors RUNNING, the wall time from a
month's file landing to its `prediction_table` materialization, and where that time goes.

    .venv/bin/python bench/automation_month.py                       # 200,000 rows, interval 5 s, 3 cycles + baseline
    .venv/bin/python bench/automation_month.py --no-baseline --repeat 1 --rows 50000 --keep /tmp/am   # smoke run
    .venv/bin/python bench/automation_month.py --instance-yaml /tmp/variant.yaml --no-baseline   # a dagster.yaml knob
    .venv/bin/python bench/automation_month.py --emit-runs --no-baseline   # automation sensors: emit_backfills=False

What it does (every process it starts is stopped at the end, also on failure: deploy_assets_tests/servers.py's
ManagedProcess, a new session per process, its group signalled):
1. An isolated world in a temp folder, the embedded default setup: DAGSTER_HOME with a copy of the repo's
   dagster.yaml (or --instance-yaml), local landing folder, MLflow sqlite store, DuckDB file; first partition
   2024-01; `DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS` = --sensor-interval (every sensor of the code location).
2. `dagster-daemon run -w workspace.yaml` (or, with --emit-runs / --automation-interval, a scratch code location,
   bench/_automation_variant.py, whose only difference is the automation sensors' settings). The code location
   holds every deployment declared under deploy_assets/defs/ (yellow and green), all their sensors RUNNING; the
   months landed are yellow files, so the `yellow` deployment is measured (`yellow/...` assets,
   `yellow_landing_sensor`, `yellow_automation_sensor`).
3. January lands and automation ingests it (the first month has no model): not timed.
4. --repeat cycles, each: one month lands (its previous month already published), then --at-once months land
   together. Files are generated beside the landing folder and renamed into it (each appears whole), at a random
   point of the sensors' cycle (--seed). Timed from the rename to the `prediction_table` materialization of the
   (last) month, read from the instance's event log (bounded wait; a failed run ends the bench).
5. Per cycle, from the instance: the landing_file observations (yellow_landing_sensor), the automation ticks that
   requested something, the backfills and the runs created after the landing (run record create time, the run's
   RUN_STARTING / RUN_START / RUN_SUCCESS events, its tags: which sensor, which backfill), the steps' seconds.
   The work is the sum of the runs' durations (RUN_START → RUN_SUCCESS: what the UI shows); gap = figure − work.
6. Baseline (unless --no-baseline), after the daemon is stopped: bench/daemon_month.py's launched-job path (the
   same rows, one month through `yellow_month_end_to_end` launched via GraphQL, sensors stopped) in its own world; the
   one-month figure is printed as a ratio of its median launch → success.

No wall-clock assertion: the target (figure ≤ sensor interval + work + 10 s) is printed as met or missed.
Last line: `AUTOMATION_JSON {...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.daemon_month import DEPLOYMENT, asset_path  # noqa: E402
from bench.daemon_month import environment as project_environment  # noqa: E402
from deploy_assets.core.months import Month  # noqa: E402
from deploy_assets_tests import servers  # noqa: E402  (plain subprocess helpers)

FIRST_MONTH = (2024, 1)
TARGET_SLACK_S = 10.0
VARIANT = ROOT / "bench" / "_automation_variant.py"
# The measured deployment's sensors (bench/daemon_month.py's DEPLOYMENT).
LANDING_SENSOR, AUTOMATION_SENSOR = f"{DEPLOYMENT}_landing_sensor", f"{DEPLOYMENT}_automation_sensor"


def key_of(year: int, month: int) -> str:
    return Month(year, month).key


def month_after(year: int, month: int, n: int = 1) -> tuple[int, int]:
    return (Month(year, month) + n).pair


def environment(root: Path, args) -> dict[str, str]:
    extra = {
        "DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS": str(args.sensor_interval),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    if args.emit_runs:
        extra["BENCH_EMIT_BACKFILLS"] = "0"
    if args.automation_interval:
        extra["BENCH_AUTOMATION_INTERVAL_SECONDS"] = str(args.automation_interval)
    return project_environment(root, key_of(*FIRST_MONTH), **extra)


def workspace(root: Path, args) -> Path:
    """The repo's workspace.yaml, or a scratch one loading the variant code location under the same name."""
    if not (args.emit_runs or args.automation_interval):
        return ROOT / "workspace.yaml"
    path = root / "workspace.yaml"
    path.write_text(
        "load_from:\n  - python_file:\n"
        f"      relative_path: {VARIANT}\n      attribute: defs\n      location_name: deploy_assets\n"
        f"      working_directory: {ROOT}\n"
    )
    return path


def land(months: list[tuple[int, int]], rows: int, staging: Path, landing: Path, seed: int) -> list[Path]:
    """Generate beside the landing folder (not timed); the caller renames them in."""
    from deploy_assets.core.generate import generate_month, write_month

    paths = []
    for index, (year, month) in enumerate(months):
        paths.append(Path(write_month(generate_month(year, month, rows, seed=seed + index), str(staging), year, month)))
    return paths


class World:
    """One daemon over one isolated project, read through its instance."""

    def __init__(self, root: Path, args):
        import dagster as dg

        self.dg = dg
        self.root, self.args = root, args
        self.env = environment(root, args)
        self.landing, self.staging = root / "data" / "landing", root / "staging"
        self.landing.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
        self.home = servers.prepare_dagster_home(root / "dagster_home", args.instance_yaml)
        self.daemon: servers.ManagedProcess | None = None
        self._instance = None

    def start(self) -> float:
        start = time.perf_counter()
        self.daemon = servers.start_dagster_daemon(
            self.home, env=self.env, workspace=workspace(self.root, self.args), log_dir=self.root, timeout=240
        )
        return time.perf_counter() - start

    def stop(self) -> None:
        if self.daemon is not None:
            try:
                self.daemon.stop(timeout=20)
            finally:
                self.daemon = None

    @property
    def instance(self):
        if self._instance is None:
            self._instance = self.dg.DagsterInstance.from_config(str(self.home))
        return self._instance

    # --- reading the instance ---

    def failed(self, since: float) -> list[str]:
        dg = self.dg
        messages = []
        for run in self.instance.get_runs(filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED], created_after=utc(since))):
            errors = [e.dagster_event.event_specific_data.error.message
                      for e in self.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
            messages.append(f"run {run.run_id} {run.tags.get('dagster/partition', '')}: {errors}")
        return messages

    def busy(self) -> bool:
        from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

        dg = self.dg
        running = self.instance.get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]), limit=1)
        return bool(running) or bool(self.instance.get_backfills(
            filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]), limit=1))

    def materialized_at(self, asset: str, partition: str, after: float) -> float | None:
        dg = self.dg
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset_path(asset)), asset_partitions=[partition]),
            limit=1).records
        return records[0].timestamp if records and records[0].timestamp > after else None

    def observed_at(self, partition: str, after: float) -> float | None:
        dg = self.dg
        records = self.instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset_path("landing_file")), asset_partitions=[partition]),
            limit=1).records
        return records[0].timestamp if records and records[0].timestamp > after else None

    def ticks(self, sensor: str, after: float) -> list:
        found = []
        for state in self.instance.all_instigator_state():
            if state.name == sensor:
                found += [t for t in self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
                          if t.timestamp > after]
        return sorted(found, key=lambda t: t.timestamp)

    def wait(self, what: str, predicate, since: float, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            failed = self.failed(since)
            if failed:
                raise RuntimeError(f"a run failed while waiting for {what}: {failed}")
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        log = self.daemon.log_tail(80) if self.daemon else ""
        raise RuntimeError(f"no {what} within {timeout:.0f} s\n--- daemon log ---\n{log}")

    def settle(self, since: float, timeout: float) -> None:
        """Nothing runs, then one more automation tick found nothing to do (so no run is left to be requested)."""
        self.wait("no run in progress", lambda: not self.busy(), since, timeout)
        quiet_from = time.time()
        self.wait("an automation tick after the runs", lambda: self.ticks(AUTOMATION_SENSOR, quiet_from), since,
                  timeout)
        self.wait("no run in progress", lambda: not self.busy(), since, timeout)

    def tick_cadence(self, since: float) -> dict:
        """Per sensor: how often its ticks actually started and how long each took (daemon loops, gRPC, load)."""
        cadence = {}
        names = {state.name for state in self.instance.all_instigator_state()}
        for name in sorted(names):
            ticks = self.ticks(name, since)
            if len(ticks) < 2:
                continue
            starts = [t.timestamp for t in ticks]
            took = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
            cadence[name] = {
                "ticks": len(ticks), "start_to_start_median_s": statistics.median(b - a for a, b in zip(starts, starts[1:])),
                "start_to_start_max_s": max(b - a for a, b in zip(starts, starts[1:])),
                "duration_median_s": statistics.median(took) if took else None,
                "duration_max_s": max(took) if took else None,
            }
        return cadence

    # --- one cycle ---

    def measure(self, months: list[tuple[int, int]], rng: random.Random, seed: int) -> dict:
        keys = [key_of(*m) for m in months]
        files = land(months, self.args.rows, self.staging, self.landing, seed)
        last_landing_tick = (self.ticks(LANDING_SENSOR, time.time() - 3600) or [None])[-1]
        time.sleep(rng.uniform(0, self.args.sensor_interval))  # an arbitrary point of the sensors' cycle
        load = os.getloadavg()[0]
        landed = time.time()
        for path in files:
            os.replace(path, self.landing / path.name)
        published = {}
        for key in keys:
            published[key] = self.wait(
                f"prediction_table[{key}]", lambda k=key: self.materialized_at("prediction_table", k, landed), landed,
                self.args.timeout)
        done = max(published.values())
        self.settle(landed, self.args.timeout)
        return self.describe(keys, landed, done, published, last_landing_tick, load)

    def describe(self, keys, landed, done, published, last_landing_tick, load) -> dict:
        from dagster._core.execution.backfill import BulkActionsFilter

        dg, instance = self.dg, self.instance
        events: list[tuple[float, str]] = [(landed, f"landed {', '.join(keys)}")]
        observed = {k: self.observed_at(k, landed - 1) for k in keys}
        for key, at in observed.items():
            if at:
                events.append((at, f"{DEPLOYMENT}/landing_file[{key}] observed ({LANDING_SENSOR})"))
        requesting = []
        for tick in self.ticks(AUTOMATION_SENSOR, landed - 1):
            if tick.timestamp <= done and (tick.tick_data.run_ids or tick.tick_data.reserved_run_ids):
                ids = list(tick.tick_data.run_ids or [])
                requesting.append({"at": tick.timestamp - landed, "end": (tick.end_timestamp or tick.timestamp) - landed,
                                   "ids": ids})
                events.append((tick.timestamp, f"{AUTOMATION_SENSOR} tick starts (requests {len(ids)}: "
                                               f"{', '.join(i[:8] for i in ids)})"))
        backfills = []
        for backfill in instance.get_backfills(filters=BulkActionsFilter(created_after=utc(landed - 1))):
            backfills.append({"id": backfill.backfill_id, "created": backfill.backfill_timestamp - landed,
                              "end": (backfill.backfill_end_timestamp - landed) if backfill.backfill_end_timestamp else None,
                              "status": str(backfill.status), "tags": dict(backfill.tags)})
            events.append((backfill.backfill_timestamp, f"backfill {backfill.backfill_id} created"))
            if backfill.backfill_end_timestamp:
                events.append((backfill.backfill_end_timestamp, f"backfill {backfill.backfill_id} completed"))
        runs = []
        for run in instance.get_runs(filters=dg.RunsFilter(created_after=utc(landed - 1))):
            record = instance.get_run_record_by_id(run.run_id)
            created = record.create_timestamp.timestamp()
            if created > done:
                continue
            at = run_events(instance, run.run_id)
            steps = [s for s in instance.get_run_step_stats(run.run_id) if s.start_time and s.end_time]
            tags = run.tags
            partitions = tags.get("dagster/partition") or (
                f"{tags.get('dagster/asset_partition_range_start')}…{tags.get('dagster/asset_partition_range_end')}")
            origin = (f"backfill {tags['dagster/backfill']}" if "dagster/backfill" in tags
                      else f"sensor {tags.get('dagster/sensor_name', '?')}" if "dagster/sensor_name" in tags
                      else "other")
            info = {
                "run_id": run.run_id, "status": str(run.status), "origin": origin, "partitions": partitions,
                "assets": sorted(k.to_user_string() for k in (run.asset_selection or [])),
                "tags": {k: v for k, v in tags.items() if k.startswith("dagster/")},
                "created": created - landed,
                "dequeued": rel(at.get("RUN_STARTING"), landed), "started": rel(at.get("RUN_START"), landed),
                "ended": rel(at.get("RUN_SUCCESS") or at.get("RUN_FAILURE"), landed),
                "steps_s": {s.step_key: s.end_time - s.start_time for s in steps},
            }
            info["duration_s"] = (info["ended"] - info["started"]) if info["ended"] and info["started"] else None
            info["launch_s"] = (info["started"] - info["dequeued"]) if info["started"] and info["dequeued"] else None
            runs.append(info)
            short = run.run_id[:8]
            events.append((created, f"run {short} created ({origin}; {partitions}; {','.join(info['assets'])})"))
            for name, label in (("dequeued", "dequeued (RUN_STARTING)"), ("started", "run worker up (RUN_START)"),
                                ("ended", "ended")):
                if info[name] is not None:
                    events.append((landed + info[name], f"run {short} {label}"))
        runs.sort(key=lambda r: r["created"])
        for key, at in published.items():
            events.append((at, f"{DEPLOYMENT}/prediction_table[{key}] materialized"))
        events.sort()
        figure = done - landed
        work = sum(r["duration_s"] or 0 for r in runs)
        first_request = min([r["created"] for r in runs] + [b["created"] for b in backfills], default=None)
        last_observed = rel(max(filter(None, observed.values()), default=None), landed)
        hops = {f"landing → observed ({LANDING_SENSOR})": last_observed}
        tick = next((t for t in requesting if last_observed is None or t["end"] >= last_observed), None)
        if tick is not None and last_observed is not None:  # < 0: the tick began before the observation was stored
            hops["observed → requesting automation tick starts"] = tick["at"] - last_observed
        if tick is not None and first_request is not None:
            hops["automation tick start → first run/backfill created"] = first_request - tick["at"]
        for backfill in backfills:
            own = [r for r in runs if r["origin"] == f"backfill {backfill['id']}"]
            if own:
                hops[f"backfill {backfill['id']} created → its first run created (backfill daemon)"] = (
                    own[0]["created"] - backfill["created"])
        for previous, run in zip([None, *runs], runs):
            name = run["run_id"][:8]
            if previous is not None and previous["ended"] is not None:
                hops[f"run {previous['run_id'][:8]} end → run {name} created"] = run["created"] - previous["ended"]
            hops[f"run {name} created → dequeued (queue)"] = diff(run["dequeued"], run["created"])
            hops[f"run {name} dequeued → started (run worker)"] = run["launch_s"]
            hops[f"run {name} started → ended (the run)"] = run["duration_s"]
        if runs and runs[-1]["ended"] is not None:  # the run ends after its last materialization: not in the figure
            hops["(after the figure) table materialized → last run ended"] = runs[-1]["ended"] - figure
        return {
            "months": keys, "landing_to_published_s": figure, "work_s": work, "gap_s": figure - work,
            "steps_sum_s": sum(sum(r["steps_s"].values()) for r in runs),
            "launch_sum_s": sum(r["launch_s"] or 0 for r in runs),
            "published_after_landing_s": {k: v - landed for k, v in published.items()},
            "landed_after_last_landing_tick_s": (landed - last_landing_tick.timestamp) if last_landing_tick else None,
            "runs": runs, "backfills": backfills, "automation_ticks": requesting, "hops": hops,
            "timeline": [(t - landed, what) for t, what in events], "loadavg_1m": load,
        }


def run_events(instance, run_id: str) -> dict[str, float]:
    """First timestamp of each run-level event, by DagsterEventType name (their stored values are PIPELINE_*)."""
    import dagster as dg

    names = {getattr(dg.DagsterEventType, n).value: n for n in (
        "RUN_ENQUEUED", "RUN_DEQUEUED", "RUN_STARTING", "RUN_START", "RUN_SUCCESS", "RUN_FAILURE")}
    first: dict[str, float] = {}
    for record in instance.get_records_for_run(run_id, limit=100_000).records:
        entry = record.event_log_entry
        if entry.dagster_event is not None and entry.dagster_event.event_type_value in names:
            first.setdefault(names[entry.dagster_event.event_type_value], entry.timestamp)
    return first


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def rel(at: float | None, landed: float) -> float | None:
    return None if at is None else at - landed


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def baseline(args) -> dict:
    """bench/daemon_month.py's launched-job path, same rows, in its own world (its own processes, stopped by it)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "daemon_month.py"), "--rows", str(args.rows), "--repeat",
         str(args.baseline_repeat)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=1800,
    )
    match = re.search(r"^DAEMON_JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode or not match:
        return {"error": f"daemon_month.py exit {done.returncode}: {done.stderr[-1500:]}"}
    report = json.loads(match.group(1))
    return {"launch_to_success_s_runs": report["launch_to_success_s_runs"],
            "launch_to_success_s_median": report["launch_to_success_s_median"],
            "steps_sum_s_median_run": report["median_run"]["steps_sum_s"]}


def summary(cycles: list[dict], label: str) -> dict:
    figures = [c["landing_to_published_s"] for c in cycles]
    work = [c["work_s"] for c in cycles]
    gaps = [c["gap_s"] for c in cycles]
    return {
        "what": label, "n": len(figures), "figures_s": figures, "min_s": min(figures),
        "median_s": statistics.median(figures), "work_median_s": statistics.median(work),
        "gap_min_s": min(gaps), "gap_median_s": statistics.median(gaps),
    }


def fmt(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def print_cycle(cycle: dict) -> None:
    print(f"\n  {', '.join(cycle['months'])}: landing → published {cycle['landing_to_published_s']:.1f} s, work"
          f" (Σ runs) {cycle['work_s']:.1f} s (steps {cycle['steps_sum_s']:.1f} s, run workers' start"
          f" {cycle['launch_sum_s']:.1f} s), gap {cycle['gap_s']:.1f} s; landed"
          f" {fmt(cycle['landed_after_last_landing_tick_s'])} s after a {LANDING_SENSOR} tick; load {cycle['loadavg_1m']:.1f}")
    previous = 0.0
    for at, what in cycle["timeline"]:
        print(f"    +{at:6.1f} s (Δ {at - previous:5.1f})  {what}")
        previous = at
    print("    hops:")
    for hop, seconds in cycle["hops"].items():
        print(f"      {fmt(seconds):>6} s  {hop}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of each month")
    parser.add_argument("--sensor-interval", type=int, default=5, help="DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS")
    parser.add_argument("--repeat", type=int, default=3, help="cycles (each: one month, then --at-once months)")
    parser.add_argument("--at-once", type=int, default=3, help="months landed together in each cycle")
    parser.add_argument("--instance-yaml", help="dagster.yaml for the DAGSTER_HOME (default: the repo's)")
    parser.add_argument("--emit-runs", action="store_true",
                        help="scratch code location: every <name>_automation_sensor(emit_backfills=False)")
    parser.add_argument("--automation-interval", type=int, default=0,
                        help="scratch code location: every <name>_automation_sensor(minimum_interval_seconds=N)")
    parser.add_argument("--no-baseline", action="store_true", help="skip bench/daemon_month.py's launched path")
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="bounded wait for each month / settling")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder, deleted)")
    parser.add_argument("--quiet", action="store_true", help="no per-cycle timelines, only the summary")
    args = parser.parse_args(argv)

    root = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="automation-month-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    world = World(root, args)
    yaml_text = (Path(args.instance_yaml) if args.instance_yaml else ROOT / "dagster.yaml").read_text()
    report: dict = {
        "rows": args.rows, "sensor_interval_s": args.sensor_interval, "cpus": os.cpu_count(),
        "instance_yaml": args.instance_yaml or "repo dagster.yaml", "emit_backfills": not args.emit_runs,
        "automation_interval_s": args.automation_interval or args.sensor_interval, "one": [], "at_once": [],
    }
    try:
        report["daemon_start_s"] = world.start()
        started = time.time()
        land([FIRST_MONTH], args.rows, world.staging, world.landing, args.seed * 1000)
        path = world.staging / f"yellow_tripdata_{FIRST_MONTH[0]:04d}-{FIRST_MONTH[1]:02d}.parquet"
        os.replace(path, world.landing / path.name)
        world.wait("raw_trips of the first month", lambda: world.materialized_at("raw_trips", key_of(*FIRST_MONTH), 0),
                   started, args.timeout)
        world.settle(started, args.timeout)
        month = FIRST_MONTH
        for cycle in range(args.repeat):
            month = month_after(*month)
            one = world.measure([month], rng, args.seed * 1000 + 10 * cycle + 1)
            report["one"].append(one)
            print(f"[automation_month] {one['months'][0]}: {one['landing_to_published_s']:.1f} s", file=sys.stderr,
                  flush=True)
            months = [month_after(*month, n) for n in range(1, args.at_once + 1)]
            month = months[-1]
            many = world.measure(months, rng, args.seed * 1000 + 10 * cycle + 5)
            report["at_once"].append(many)
            print(f"[automation_month] {', '.join(many['months'])}: {many['landing_to_published_s']:.1f} s",
                  file=sys.stderr, flush=True)
        report["tick_cadence"] = world.tick_cadence(started)
    finally:
        world.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report["summary_one"] = summary(report["one"], "1 month")
    report["summary_at_once"] = summary(report["at_once"], f"{args.at_once} months at once")
    if not args.no_baseline:
        report["baseline"] = baseline(args)
    print_report(report, yaml_text, args)
    print("AUTOMATION_JSON " + json.dumps(report, sort_keys=True, default=str))


def print_report(report: dict, yaml_text: str, args) -> None:
    interval = report["sensor_interval_s"]
    print(f"\nLanding → published through automation: {report['rows']:,} rows a month, {report['cpus']} CPUs,"
          f" DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS={interval}, {AUTOMATION_SENSOR} every"
          f" {report['automation_interval_s']} s, emit_backfills={report['emit_backfills']},"
          f" instance: {report['instance_yaml']}")
    if not args.quiet:
        for cycle in report["one"] + report["at_once"]:
            print_cycle(cycle)
    print(f"\n{'':<22} {'runs (landing → published, s)':<34} {'min':>6} {'median':>7} {'work':>6} {'gap':>6}"
          f"  target ≤ interval + work + {TARGET_SLACK_S:.0f}")
    for s, cycles in ((report["summary_one"], report["one"]), (report["summary_at_once"], report["at_once"])):
        met = sum(c["landing_to_published_s"] <= interval + c["work_s"] + TARGET_SLACK_S for c in cycles)
        print(f"{s['what']:<22} {', '.join(f'{f:.1f}' for f in s['figures_s']):<34} {s['min_s']:>6.1f}"
              f" {s['median_s']:>7.1f} {s['work_median_s']:>6.1f} {s['gap_median_s']:>6.1f}  met in {met} of {len(cycles)}")
    base = report.get("baseline")
    if base and "error" not in base:
        m = base["launch_to_success_s_median"]
        print(f"baseline: one month launched as a job (bench/daemon_month.py), launch → success median {m:.1f} s"
              f" ({', '.join(f'{v:.1f}' for v in base['launch_to_success_s_runs'])}); 1 month through automation"
              f" / launched: {report['summary_one']['median_s'] / m:.2f}×, {args.at_once} months at once / launched"
              f" one: {report['summary_at_once']['median_s'] / m:.2f}×")
    elif base:
        print(f"baseline failed: {base['error']}")
    print("sensor ticks (start → next start, and each tick's own duration; median / max, s):")
    for name, c in report.get("tick_cadence", {}).items():
        print(f"  {name:<30} {c['ticks']:>4} ticks, every {c['start_to_start_median_s']:.1f} / {c['start_to_start_max_s']:.1f},"
              f" taking {fmt(c['duration_median_s'])} / {fmt(c['duration_max_s'])}")
    loads = [c["loadavg_1m"] for c in report["one"] + report["at_once"]]
    print(f"1-minute load average at the landings: {min(loads):.1f}–{max(loads):.1f}")


if __name__ == "__main__":
    main()
