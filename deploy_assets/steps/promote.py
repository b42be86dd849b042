"""The promotion step: moves @champion to month M's model when `core.promotion.decide_promotion` says so, judged on
the rides of M against the mean baseline and the current champion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy_assets.core.batches import BatchSource
from deploy_assets.core.promotion import Decision, PromotionMargins, decide_promotion
from deploy_assets.core.registry import RegistryClient
from deploy_assets.steps.findings import StepFailure
from deploy_assets.steps.train import rmse_on


@dataclass
class PromotionDecided:
    decision: Decision
    metadata: dict[str, Any]


def promote_if_better(
    registry: RegistryClient,
    key: str,
    candidate: str,
    baseline_rmse: float | None,
    rides: BatchSource,
    columns: list[str],
    margins: PromotionMargins,
    by: str,
) -> PromotionDecided:
    """Judge `candidate` (month `key`'s model) on the month's rides and promote it if the rule says so.
    `baseline_rmse` is the month's mean baseline as the training step measured it on the same rides."""
    if baseline_rmse is None:
        raise StepFailure("duration_model was materialized before it recorded its mean baseline: materialize it again")
    champion = registry.champion_version()
    # Validated first: a model reading a column the deployment's rides lack is refused by name.
    candidate_rmse = rmse_on(registry.load_deployable(candidate), rides, columns)
    champion_rmse = rmse_on(registry.load(champion), rides, columns) if champion else None
    champion_month = registry.version_tags(champion).get("partition") if champion else None
    decision = decide_promotion(
        candidate, candidate_rmse, baseline_rmse, champion, champion_rmse, key, champion_month, margins
    )
    if decision.promote:
        registry.promote(candidate, by=by, reason=decision.reason)
    return PromotionDecided(
        decision,
        {
            "candidate_version": candidate,
            "candidate_rmse": candidate_rmse,
            # The champion it was judged against (before any promotion) and that model's RMSE.
            "champion_version": champion,
            "champion_rmse": champion_rmse,
            "mean_baseline_rmse": baseline_rmse,
            "champion_margin": margins.over_champion,
            "baseline_margin": margins.over_baseline,
            "champion_after": registry.champion_version(),
            "promoted": decision.promote,
            "decision": decision.reason,
            "rule": decision.rule,
        },
    )
