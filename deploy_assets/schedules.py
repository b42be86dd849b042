"""The monthly schedule: score the month that just closed."""

import dagster as dg


def build_monthly_schedule(name: str, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """`<name>_monthly_scoring_schedule`: on the 2nd at 06:00 UTC, materialize the partition of the month that
    ended. Off by default: the TLC publishes a month weeks after it closes, so the landing sensor is the usual
    trigger; turn this on when files arrive on a fixed calendar."""
    return dg.build_schedule_from_partitioned_job(
        job, name=f"{name}_monthly_scoring_schedule", day_of_month=2, hour_of_day=6, tags={"trigger": "schedule"}
    )
