"""Left alone, it converges, over the real dagster-daemon: six months plus stray files at once, a
restart over the converged instance, and a re-upload. "Nothing more happens" is proven by waiting for the
automation sensor to evaluate again after the end state and seeing no new run."""

from __future__ import annotations

import pytest

from deploy_assets_tests.daemon_platform import (
    MONTHS,
    STRAY_NAMES,
    assert_one_version_per_month,
    platform,  # noqa: F401 - the fixture
)

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]


def test_six_months_at_once_with_stray_files_converge_and_a_restart_launches_nothing(platform):
    platform.start()
    for name in STRAY_NAMES:
        platform.land_stray(name)
    for month in MONTHS:
        platform.land(month)

    scored = MONTHS[1:]  # the first month has nothing before it to train on
    platform.wait_until(lambda: platform.converged(scored), "every month after the first published")
    runs = platform.wait_quiet()
    assert len(platform.instance.get_runs()) == runs, "automation kept launching after convergence"
    assert platform.failed_runs() == []
    assert_one_version_per_month(platform, scored)
    assert platform.published(MONTHS[0]) is None
    rows = platform.table_months()
    assert set(rows) == set(scored)
    # Stray objects were skipped (with a reason, in the sensor's log) and wedged nothing.
    assert set(platform.materialization_counts("raw_trips")) == set(MONTHS)

    # Restarting the daemon over the converged instance launches nothing.
    platform.stop()
    platform.start()
    runs = len(platform.instance.get_runs())
    assert platform.wait_quiet() == runs
    assert len(platform.instance.get_runs()) == runs

    # One month re-uploaded with other bytes: that month and what depends on it refresh, nothing else.
    before = {asset: platform.materialization_counts(asset) for asset in ("raw_trips", "duration_model", "trip_predictions")}
    versions_before = platform.versions_by_month()
    changed, following = MONTHS[2], MONTHS[3]
    old_bytes = {m: platform.published(m) for m in scored}
    platform.land(changed, seed=7)
    platform.wait_until(
        lambda: platform.materialization_counts("trip_predictions").get(following, 0) > before["trip_predictions"][following]
        and platform.published(following) != old_bytes[following],
        f"{changed} and {following} refreshed",
    )
    platform.wait_quiet()
    after = {asset: platform.materialization_counts(asset) for asset in before}
    grew = {asset: sorted(m for m in after[asset] if after[asset][m] != before[asset].get(m)) for asset in before}
    assert grew == {
        "raw_trips": [changed],
        "duration_model": [changed, following],  # its test month changed; the next one's training data changed
        "trip_predictions": [changed, following],
    }
    versions = platform.versions_by_month()
    assert versions[changed] == versions_before[changed]  # same training data: not registered again
    assert len(versions[following]) == 2  # trained on the new bytes: a new version
    assert platform.scored_by(following) == {max(versions[following], key=int)}
    untouched = [m for m in scored if m not in (changed, following)]
    assert all(platform.published(m) == old_bytes[m] for m in untouched)
