"""When a month's model may become @champion: one rule, for the promotion asset, the bench and the tests.

A candidate is judged on the rides of the month it was trained for (it never saw them), against two references:
- the mean baseline (predicting the training months' mean duration): a model that does not beat it by a margin
  has learnt nothing worth serving. This is the only test the first model of a deployment can get;
- the current champion on the very same rides: a candidate much worse than it is kept out, so a model trained on
  a silently corrupted month cannot replace a good one.
Plus the registry's order in time: the champion never moves to a model of an older month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionMargins:
    over_baseline: float = 0.05  # the candidate's RMSE must be at most (1 − this) × the mean baseline's
    over_champion: float = 0.05  # and at most (1 + this) × the champion's on the same rides


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    rule: str


def decide_promotion(
    candidate: str,
    candidate_rmse: float,
    baseline_rmse: float,
    champion: str | None,
    champion_rmse: float | None,
    month: str,
    champion_month: str | None = None,
    margins: PromotionMargins = PromotionMargins(),
) -> Decision:
    """Whether `candidate` (trained for `month`) replaces `champion`, and why, with the numbers it was judged on."""
    rule = (
        f"RMSE on {month} ≤ {1 - margins.over_baseline:g} × mean baseline's and ≤ {1 + margins.over_champion:g} ×"
        " champion's on the same rides; never a model of an older month"
    )

    def kept(reason: str) -> Decision:
        return Decision(False, f"{'not promoted' if champion is None else f'kept {champion}'}: {reason}", rule)

    if champion == candidate:
        return Decision(False, "already champion", rule)
    if champion is not None and champion_month and champion_month > month:
        return kept(f"it is of a later month ({champion_month})")
    if not math.isfinite(candidate_rmse) or candidate_rmse > baseline_rmse * (1 - margins.over_baseline):
        return kept(
            f"RMSE {candidate_rmse:.3f} on {month} does not beat the mean baseline's {baseline_rmse:.3f} by"
            f" {margins.over_baseline:.0%}"
        )
    if champion is not None and champion_rmse is not None and candidate_rmse > champion_rmse * (1 + margins.over_champion):
        return kept(
            f"RMSE {candidate_rmse:.3f} vs {champion_rmse:.3f} on {month} (the same rides; margin"
            f" {margins.over_champion:.0%})"
        )
    judged = f"RMSE {candidate_rmse:.3f} on {month} vs the mean baseline's {baseline_rmse:.3f}"
    if champion is not None and champion_rmse is not None:
        judged += (
            f" and {champion}'s {champion_rmse:.3f} on the same rides (allowed up to"
            f" {champion_rmse * (1 + margins.over_champion):.3f})"
        )
    return Decision(True, f"promoted {candidate} (was {champion}): {judged}", rule)
