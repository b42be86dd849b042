"""The stream consumer's ends, in memory: ride events as Kinesis records, and an output writer that keeps them."""

from __future__ import annotations

import json

from deploy_assets.serving import stream


class CapturingOutput:
    """The stream's output writer, in memory: every entry accepted."""

    def __init__(self):
        self.events: list[dict] = []

    def put(self, entries) -> list[int]:
        self.events.extend(json.loads(data) for data, _ in entries)
        return []


def records(events: list[dict]) -> list[stream.StreamRecord]:
    """Ride events as the records of one shard of `ride_events`, in order."""
    return [
        stream.StreamRecord(json.dumps(event).encode(), f"{i:020d}", str(i), "shardId-000000000000", "ride_events")
        for i, event in enumerate(events)
    ]
