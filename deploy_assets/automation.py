"""Dagster's declarative automation over a deployment's graph: the `converge()` conditions every materializable asset
carries, and the automation sensor that evaluates them.

Every materializable asset carries `converge()`: materialize a month when something it depends on changed (or it
went missing), once everything it needs exists and nothing it depends on is running. Unlike
`AutomationCondition.eager()` it looks at every month, not only the latest, so a historical load converges. Runs
come from Dagster's automation-condition sensor; two runs of one month never overlap (`~in_progress`), and a
month is requested again only after a new change upstream, so a failed run is not retried in a loop. What Dagster
cannot see by itself (a landed file, a moved alias) the sensors of `sensors.py` report.
"""

from __future__ import annotations

import dagster as dg


def converge(earlier_months: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """`eager()` over every month (not only the latest), reacting to new *data versions* only.

    Every asset's data version is its content (`assets/versions.py`), so an upstream month recomputed to the same
    content requests nothing. A change made by a run that also ran this asset does not request it again; that is
    judged per asset, not per month, by Dagster, so for `earlier_months` (deps of other months, e.g. the
    statistics duration_model[M] trains on) any change counts, and a month is not requested while one of those is
    requested in the same tick: it would run beside the run that rewrites what it reads.

    On its first evaluation (a new instance, or a changed condition) a month that is missing while everything it
    needs exists is requested too: `newly_missing` and updates only count after that first evaluation, so months
    observed before it (the landing sensor ticked first) would otherwise never run.
    """
    AC = dg.AutomationCondition
    same_run_change = (AC.data_version_changed() & ~AC.executed_with_root_target()) | AC.will_be_requested()
    updated = AC.any_deps_match(same_run_change)
    waits_for_earlier = None
    if earlier_months is not None:
        updated = updated.ignore(earlier_months) | AC.any_deps_match(AC.data_version_changed()).allow(earlier_months)
        waits_for_earlier = AC.any_deps_match(AC.will_be_requested()).allow(earlier_months)
    condition = (
        ((AC.newly_missing() | updated.with_label("any_deps_data_changed")).since_last_handled()
         | (AC.initial_evaluation() & AC.missing()))
        & ~AC.any_deps_missing()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    )
    if waits_for_earlier is not None:
        condition = condition & ~waits_for_earlier.with_label("an earlier month is requested in this tick")
    return condition.with_label("converge")


def converge_with_every_input(earlier_months: dg.AssetSelection) -> dg.AutomationCondition:
    """`converge()`, and every dependency maps to at least one existing month: the first month of the range has
    no month before it to train on, so its model is never requested."""
    has_every_input = dg.AutomationCondition.all_deps_match(
        ~dg.AutomationCondition.missing() | dg.AutomationCondition.will_be_requested()
    ).with_label("every input has a month")
    return converge(earlier_months) & has_every_input


def sensor_minimum_interval(interval: int) -> int:
    """The `minimum_interval_seconds` that makes a sensor tick every `interval` s.

    Dagster's sensor and automation daemons look at each sensor every 5 s and skip one whose last tick started
    less than its minimum interval ago: a minimum of exactly 5 s (or 30 s) ticks every 10 s (or 35 s), the loop's
    own jitter putting it just under. One second less ticks on the loop that follows the interval."""
    return max(1, interval - 1)


def build_automation_sensor(name: str, interval: int, running: bool = True) -> dg.AutomationConditionSensorDefinition:
    """Dagster's automation sensor over the assets of the deployment `name` (`<name>_automation_sensor`: its
    own cursor, so one deployment's evaluations never wait for another's), evaluated every `interval` s; it
    starts stopped unless `running`."""
    return dg.AutomationConditionSensorDefinition(
        f"{name}_automation_sensor",
        target=dg.AssetSelection.key_prefixes([name]),
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=sensor_minimum_interval(interval),
        # Runs, not backfills: the backfill daemon would pick them up only on its own 30-second loop, and each run
        # holds one month anyway (assets/versions.py).
        emit_backfills=False,
        description="Dagster's declarative automation over the deployment's assets: what is out of date and can run, runs.",
    )
