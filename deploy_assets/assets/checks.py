"""Asset checks, computed inside the step that has the data in hand (nothing is read back to check it).

Each step declares its checks as `check_specs` and reports one evaluation per check and month of its run: the
checks are partitioned like their assets, and each evaluation names the month's materialization it is about, so
the UI shows each month's status (the checks' Partitions view) and plots the numbers across partitions however
the months were run. A failed blocking check (ERROR) stops
the step before it stores or publishes anything, so what users read stays as it was; a warning (WARN) is reported
and the step goes on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dagster as dg

from deploy_assets.assets.history import check_target
from deploy_assets.steps.findings import CheckSpecs, Findings


def check_specs(asset: dg.AssetKey, checks: CheckSpecs, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=description, partitions_def=partitions_def)
        for name, (blocking, description) in checks.items()
    ]


def month_check_evaluations(
    context: dg.AssetExecutionContext,
    asset: dg.AssetKey,
    checks: CheckSpecs,
    findings: Findings,
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """One evaluation per selected check and month the step's `findings` reached: what failed and the plotted
    values (`{"skipped": why}`: nothing to evaluate, the check is skipped).

    `AssetCheckResult` would record a ranged run's result on no month, so the evaluations carry their partition
    and the materialization they are about; the check's own output is emitted here, as Dagster does for an
    `AssetCheckResult`. Iterate it only after yielding the materializations it checks (it looks them up)."""
    for key in sorted(context.selected_asset_check_keys, key=lambda key: key.name):
        if key.asset_key != asset:
            continue
        blocking, _ = checks[key.name]
        per_month, failed = findings.numbers.get(key.name, {}), findings.problems.get(key.name, {})
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))
        for month in sorted(per_month.keys() | failed.keys()):
            if "skipped" in per_month.get(month, {}) and month not in failed:
                context.log.info(f"{key.name}[{month}] skipped: {per_month[month]['skipped']}")
                continue
            yield dg.AssetCheckEvaluation(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=month not in failed,
                severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
                description=failed.get(month),
                metadata=rounded(per_month.get(month, {})),
                blocking=blocking,
                partition=month,
                target_materialization_data=check_target(context.instance, key.asset_key, month),
            )


def rounded(metadata: Mapping[str, object], digits: int = 6) -> dict[str, object]:
    """Floats as the UI should print them: six significant digits, not seventeen."""
    return {
        name: float(f"{value:.{digits}g}") if isinstance(value, float) else value for name, value in metadata.items()
    }
