"""Thresholds the asset checks apply."""

import dagster as dg
from pydantic import Field

from deploy_assets.core.contract import OUTPUT_POLICY, OutputPolicy
from deploy_assets.core.drift import SIGNIFICANT_PSI


class QualityThresholds(dg.ConfigurableResource):
    """The limits the checks apply, in one place."""

    max_dropped_share: float = Field(0.2, description="share of a month's rows that may be dropped as dirty")
    volume_tolerance: float = Field(0.5, description="allowed relative change of kept rows vs the previous month")
    max_predicted_minutes: float = Field(
        OUTPUT_POLICY.max_minutes, description="the top of the predictions' declared range (minutes; from 0)"
    )
    output_action: str = Field(
        OUTPUT_POLICY.action, description="what happens to a prediction outside the range: clip, drop or fail"
    )
    max_adjusted_share: float = Field(
        0.05, description="share of a month's predictions the output policy may clip or drop before the month fails"
    )
    drift_psi_warning: float = Field(SIGNIFICANT_PSI, description="PSI above which a shift is reported")

    def output_policy(self) -> OutputPolicy:
        """The deployment's output policy (core.contract), as batch scoring applies it."""
        return OutputPolicy(OUTPUT_POLICY.min_minutes, self.max_predicted_minutes, self.output_action)
