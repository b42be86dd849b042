"""One micro-batch: validate → score with one model version → write predictions → dead-letter the rest (rides the
valid-ride rule or the output policy refuses included, with the reason `score_rides` gives).

The only place events are scored, for the Lambda and the local runner alike. Scoring is
`serving.features.score_rides`, the call the web service makes and the batch scorer's `predict_arrays`, so a
ride gets the same prediction on every path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from deploy_assets.core.contract import OUTPUT_POLICY, OutputPolicy
from deploy_assets.core.features import FEATURE_COLUMNS, RIDE_RULES, RideRules
from deploy_assets.serving.features import score_rides
from deploy_assets.serving.model_source import LoadedModel
from deploy_assets.serving.schemas import ride_model
from deploy_assets.serving.stream.dead_letters import DeadLetterSink
from deploy_assets.serving.stream.events import (
    DeadLetter,
    InvalidEvent,
    ParsedEvent,
    StreamRecord,
    parse_event,
    partition_key,
    prediction_event,
)
from deploy_assets.serving.stream.kinesis_writer import KinesisWriter


@dataclass
class BatchOutcome:
    predictions: list[dict] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    failed: list[StreamRecord] = field(default_factory=list)  # not written after retries (output or dead letter)
    version: str | None = None


def handle_records(
    records: Sequence[StreamRecord],
    loaded: LoadedModel,
    output: KinesisWriter,
    dead_letter: DeadLetterSink,
    dead_letters: Sequence[DeadLetter] = (),
    rules: RideRules = RIDE_RULES,
    policy: OutputPolicy = OUTPUT_POLICY,
    features: tuple[str, ...] = FEATURE_COLUMNS,
) -> BatchOutcome:
    """Validate (each ride one of the deployment's: its dataset's ride `features`, a missing zone where `rules`
    keep one), score (one model version for the whole batch), write predictions, dead-letter the rest."""
    rides = ride_model(features, rules.keep_missing_zones)
    parsed: list[ParsedEvent] = []
    letters = list(dead_letters)
    for record in records:
        try:
            ride, ride_id = parse_event(record.data, rides)
        except InvalidEvent as invalid:
            letters.append(DeadLetter(record, invalid.reason, invalid.detail))
            continue
        parsed.append(ParsedEvent(record, ride, ride_id))

    durations, refused = score_rides(loaded.model, [event.ride for event in parsed], rules, policy)
    for row, refusal in sorted(refused.items()):  # what batch would drop, or the output policy refuses
        letters.append(DeadLetter(parsed[row].record, refusal.reason, refusal.detail))
    if refused:
        parsed = [event for row, event in enumerate(parsed) if row not in refused]
        durations = [duration for row, duration in enumerate(durations) if row not in refused]
    predictions = [prediction_event(loaded.version, event.ride_id, duration) for event, duration in zip(parsed, durations)]
    outcome = BatchOutcome(predictions=predictions, dead_letters=letters, version=loaded.version)
    if predictions:
        entries = [(json.dumps(event).encode(), partition_key(p)) for event, p in zip(predictions, parsed)]
        outcome.failed.extend(parsed[i].record for i in output.put(entries))
    if letters:
        outcome.failed.extend(letters[i].record for i in dead_letter.send(letters))
    return outcome
