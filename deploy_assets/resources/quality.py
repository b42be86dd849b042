"""Thresholds the asset checks apply."""

import dagster as dg
from pydantic import Field

from deploy_assets.core.drift import SIGNIFICANT_PSI


class QualityThresholds(dg.ConfigurableResource):
    """The limits the checks apply, in one place."""

    max_dropped_share: float = Field(0.2, description="share of a month's rows that may be dropped as dirty")
    volume_tolerance: float = Field(0.5, description="allowed relative change of kept rows vs the previous month")
    max_predicted_minutes: float = Field(180.0, description="predictions above this are absurd")
    drift_psi_warning: float = Field(SIGNIFICANT_PSI, description="PSI above which a shift is reported")
