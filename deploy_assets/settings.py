"""What shapes the asset graph itself, read once when the code location loads (not per run).

Resources (locations, the registry, the database) are chosen per deployment in `resources/__init__.py`; these few
settings change which partitions and edges exist and how often automation looks, so they live in the code
location's environment:

| variable | default | what |
|---|---|---|
| `DEPLOY_ASSETS_FIRST_MONTH` | `2023-01-01` | first monthly partition |
| `DEPLOY_ASSETS_TRAINING_MONTHS` | `1` | duration_model[M] trains on the k months before M |
| `DEPLOY_ASSETS_SCORING_POLICY` | `partition` | `partition`: month M is scored by duration_model[M]; `champion`: by the registry's @champion, re-scored when it moves |
| `DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS` | `30` | how often the landing and champion sensors and the automation sensor look |
| `DEPLOY_ASSETS_PREDICTIONS_DUE_CRON` | `0 6 3 * *` | deadline of a closed month's predictions (UTC cron): the 3rd at 06:00 |
| `DEPLOY_ASSETS_PREDICTIONS_DUE_WINDOW_MINUTES` | `3240` | a materialization counts for a deadline when it is at most this long before it (54 h: from the month's close) |
"""

from __future__ import annotations

import os

PARTITION_POLICY = "partition"
CHAMPION_POLICY = "champion"

FIRST_MONTH = os.getenv("DEPLOY_ASSETS_FIRST_MONTH", "2023-01-01")
TRAINING_WINDOW_MONTHS = int(os.getenv("DEPLOY_ASSETS_TRAINING_MONTHS", "1"))
SCORING_POLICY = os.getenv("DEPLOY_ASSETS_SCORING_POLICY", PARTITION_POLICY)
SENSOR_INTERVAL_SECONDS = int(os.getenv("DEPLOY_ASSETS_SENSOR_INTERVAL_SECONDS", "30"))
PREDICTIONS_DUE_CRON = os.getenv("DEPLOY_ASSETS_PREDICTIONS_DUE_CRON", "0 6 3 * *")
PREDICTIONS_DUE_WINDOW_MINUTES = int(os.getenv("DEPLOY_ASSETS_PREDICTIONS_DUE_WINDOW_MINUTES", str(54 * 60)))

if SCORING_POLICY not in (PARTITION_POLICY, CHAMPION_POLICY):
    raise ValueError(
        f"DEPLOY_ASSETS_SCORING_POLICY={SCORING_POLICY!r}: expected {PARTITION_POLICY!r} or {CHAMPION_POLICY!r}"
    )
