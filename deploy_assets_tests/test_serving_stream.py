"""Stream scoring (deploy_assets.serving.stream) against moto's Kinesis server: the Lambda handler, and the local
runner that feeds it the way a Kinesis event source mapping does.

Every test uses real Kinesis API calls to the session's moto server (`moto_s3`, which also serves Kinesis).
Most use a fixed in-memory model (`StaticModel`) so they need no MLflow; the `servers` tests at the end run the
CLI runner as subprocesses (stopped with SIGINT and restarted; champion and shadow side by side) and the Lambda
handler from its environment, loading `models:/NAME@champion` / `@challenger` from the session's MLflow server.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from deploy_assets.serving import stream
from deploy_assets.serving.stream import lambda_handler
from deploy_assets.serving.model_source import StaticModel
from deploy_assets_tests import servers
from deploy_assets_tests.test_serving_web import (
    make_registry,
    register,
    registry_env,  # noqa: F401 - fixture
    serving_env,
    trained_model,
    wait_for,
)

VERSION = "7"


# --- helpers -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return trained_model(2024, 1, seed=3)


@pytest.fixture
def kinesis(moto_s3: str, aws_test_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)  # what the CLI and the Lambda read
    return stream.make_client("kinesis")


@pytest.fixture
def streams(kinesis) -> Iterator:
    """`streams(shards=2)` → a new stream name (deleted after the test)."""
    created: list[str] = []

    def create(shards: int = 2) -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        created.append(name)
        return name

    yield create
    for name in created:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def ride_event(i: int) -> dict:
    return {
        "ride": {"PULocationID": 1 + (i * 7) % 265, "DOLocationID": 1 + (i * 13) % 265, "trip_distance": round(0.3 + (i % 40) * 0.7, 2)},
        "ride_id": i,
    }


def expected_duration(model, event: dict) -> float:
    ride = event["ride"]
    return float(
        model.predict_arrays(
            np.array([ride["PULocationID"]]), np.array([ride["DOLocationID"]]), np.array([float(ride["trip_distance"])])
        )[0]
    )


def put_events(kinesis, name: str, payloads: list[bytes], keys: list[str] | None = None) -> None:
    keys = keys or [str(i) for i in range(len(payloads))]
    for start in range(0, len(payloads), 500):
        response = kinesis.put_records(
            StreamName=name,
            Records=[{"Data": data, "PartitionKey": key} for data, key in zip(payloads[start : start + 500], keys[start : start + 500])],
        )
        assert response["FailedRecordCount"] == 0


def read_stream(kinesis, name: str) -> list[dict]:
    """Every record of every shard, decoded from JSON (with `_partition_key` and `_shard` added)."""
    out = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not response["Records"]:
                break
            for record in response["Records"]:
                item = json.loads(record["Data"])
                item["_partition_key"] = record["PartitionKey"]
                item["_shard"] = shard["ShardId"]
                out.append(item)
            iterator = response.get("NextShardIterator")
    return out


def consumer_for(kinesis, input_stream: str, output_stream: str, model, checkpoint: Path, **options) -> stream.StreamConsumer:
    options.setdefault("poll_interval", 0.05)
    return stream.StreamConsumer(
        kinesis=kinesis,
        input_stream=input_stream,
        output=options.pop("output", None) or stream.KinesisWriter(kinesis, output_stream, stream.Backoff(base=0.01)),
        model_source=StaticModel(model, VERSION),
        checkpoints=options.pop("checkpoints", None) or stream.FileCheckpointStore(checkpoint, input_stream),
        **options,
    )


def assert_exactly_once(outputs: list[dict], model, events: dict[int, dict], version: str = VERSION) -> None:
    counts = Counter(item["prediction"]["ride_id"] for item in outputs)
    duplicates = {ride_id: n for ride_id, n in counts.items() if n > 1}
    assert not duplicates, f"duplicates: {list(duplicates.items())[:10]}"
    missing = set(events) - set(counts)
    assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:10]}"
    assert set(counts) == set(events)
    for item in outputs:
        ride_id = item["prediction"]["ride_id"]
        assert item["model"] == "ride_duration_prediction_model" and item["version"] == version
        assert item["prediction"]["ride_duration"] == expected_duration(model, events[ride_id])
        assert item["_partition_key"] == str(ride_id)


BAD_EVENTS = [
    (b"\xff\xfe not json", "invalid_json"),
    (b'[{"ride": {}}]', "not_an_object"),
    (b'{"ride_id": 5}', "missing_ride"),
    (b'{"ride": {"PULocationID": 999, "DOLocationID": 1, "trip_distance": 1.0}, "ride_id": "bad-zone"}', "invalid_ride"),
    (b'{"ride": {"PULocationID": 1, "DOLocationID": 1, "trip_distance": NaN}, "ride_id": "nan"}', "invalid_ride"),
    (b'{"ride": {"PULocationID": 1, "DOLocationID": 1}, "ride_id": "no-distance"}', "invalid_ride"),
    (b'{"ride": {"PULocationID": 1, "DOLocationID": 1, "trip_distance": 1.0}, "ride_id": {"x": 1}}', "invalid_ride_id"),
]


# --- consumer --------------------------------------------------------------------------------------------------------


def test_consumer_scores_micro_batches_and_dead_letters_invalid_events(kinesis, streams, model, tmp_path):
    source, sink, dead = streams(2), streams(1), streams(1)
    events = {i: ride_event(i) for i in range(300)}
    payloads = [json.dumps(event).encode() for event in events.values()]
    payloads[100:100] = [data for data, _ in BAD_EVENTS]  # in the middle of the stream
    put_events(kinesis, source, payloads)

    consumer = consumer_for(
        kinesis, source, sink, model, tmp_path / "checkpoints.json", batch_size=64,
        dead_letter=stream.dead_letter_from_uri(f"kinesis://{dead}", kinesis_client=kinesis),
    )
    stats = consumer.run(until=lambda s: s.records_read >= len(payloads), idle_timeout=20)

    assert (stats.records_read, stats.predictions_written, stats.dead_lettered) == (307, 300, 7)
    assert_exactly_once(read_stream(kinesis, sink), model, events)

    letters = read_stream(kinesis, dead)
    assert sorted(letter["reason"] for letter in letters) == sorted(reason for _, reason in BAD_EVENTS)
    by_data = {base64.b64decode(letter["data_base64"]): letter for letter in letters}
    assert set(by_data) == {data for data, _ in BAD_EVENTS}
    bad_zone = by_data[BAD_EVENTS[3][0]]
    assert "PULocationID" in bad_zone["detail"] and "less than or equal to 265" in bad_zone["detail"]
    assert bad_zone["stream"] == source and bad_zone["shard_id"].startswith("shardId-") and bad_zone["sequence_number"]
    assert "finite number" in by_data[BAD_EVENTS[4][0]]["detail"]

    # One checkpoint per shard: the last sequence number of that shard.
    saved = json.loads((tmp_path / "checkpoints.json").read_text())
    assert saved["stream"] == source
    for shard in kinesis.list_shards(StreamName=source)["Shards"]:
        last = int(shard["SequenceNumberRange"].get("EndingSequenceNumber", 0)) or max(
            int(r["SequenceNumber"])
            for r in kinesis.get_records(
                ShardIterator=kinesis.get_shard_iterator(StreamName=source, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            )["Records"]
        )
        assert int(saved["shards"][shard["ShardId"]]) == last

    # Nothing new: a restarted consumer reads nothing again.
    again = consumer_for(kinesis, source, sink, model, tmp_path / "checkpoints.json", batch_size=64)
    assert again.run(idle_timeout=0.3).records_read == 0


def test_stop_and_restart_during_live_traffic_loses_and_duplicates_nothing(kinesis, streams, model, tmp_path):
    source, sink = streams(2), streams(2)
    total = 600
    events = {i: ride_event(i) for i in range(total)}
    produced = threading.Event()

    def produce() -> None:
        for start in range(0, total, 20):
            put_events(kinesis, source, [json.dumps(events[i]).encode() for i in range(start, start + 20)])
            time.sleep(0.02)
        produced.set()

    producer = threading.Thread(target=produce)
    producer.start()
    first = consumer_for(kinesis, source, sink, model, tmp_path / "cp.json", batch_size=25)
    runner = threading.Thread(target=first.run)
    runner.start()
    try:
        wait_for(lambda: first.stats.predictions_written >= 100, 30, "first consumer progress", 0.01)
        first.stop()
        runner.join(30)
        assert not runner.is_alive()
        stopped_at = first.stats.predictions_written
    finally:
        first.stop()
        producer.join(60)
    assert stopped_at < total, "the stop should happen while events are still arriving"

    second = consumer_for(kinesis, source, sink, model, tmp_path / "cp.json", batch_size=25)
    second.run(until=lambda s: stopped_at + s.predictions_written >= total, idle_timeout=20)
    assert stopped_at + second.stats.predictions_written == total
    third = consumer_for(kinesis, source, sink, model, tmp_path / "cp.json", batch_size=25)
    assert third.run(idle_timeout=0.3).records_read == 0  # everything was checkpointed
    assert_exactly_once(read_stream(kinesis, sink), model, events)


class FlakyPuts:
    """A Kinesis client whose first `failing_calls` PutRecords calls reject every other record (throttled), the way
    Kinesis reports partial failures; the records it accepts are really written."""

    def __init__(self, client, failing_calls: int = 2, always: bool = False):
        self.client = client
        self.failing_calls = failing_calls
        self.always = always
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def put_records(self, StreamName, Records):  # noqa: N803 - boto3's parameter names
        self.calls += 1
        if not self.always and self.calls > self.failing_calls:
            return self.client.put_records(StreamName=StreamName, Records=Records)
        accepted = [] if self.always else Records[::2]
        written = iter(self.client.put_records(StreamName=StreamName, Records=accepted)["Records"]) if accepted else iter(())
        results = [
            next(written) if (not self.always and i % 2 == 0) else {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
            for i in range(len(Records))
        ]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def test_partial_put_failures_retry_only_the_failed_records(kinesis, streams, model, tmp_path):
    source, sink = streams(1), streams(1)
    events = {i: ride_event(i) for i in range(120)}
    put_events(kinesis, source, [json.dumps(e).encode() for e in events.values()])
    writer = stream.KinesisWriter(FlakyPuts(kinesis, failing_calls=3), sink, stream.Backoff(base=0.001))

    consumer_for(kinesis, source, sink, model, tmp_path / "cp.json", batch_size=50, output=writer).run(
        until=lambda s: s.records_read >= 120, idle_timeout=10
    )

    assert writer.records_retried > 0
    assert_exactly_once(read_stream(kinesis, sink), model, events)


def test_failed_writes_are_not_checkpointed_and_a_restart_loses_nothing(kinesis, streams, model, tmp_path):
    source, sink = streams(1), streams(1)
    events = {i: ride_event(i) for i in range(40)}
    put_events(kinesis, source, [json.dumps(e).encode() for e in events.values()])
    flaky = FlakyPuts(kinesis, always=True)
    broken = stream.KinesisWriter(flaky, sink, stream.Backoff(attempts=3, base=0.001))

    with pytest.raises(stream.WriteFailed, match="could not be written"):
        consumer_for(
            kinesis, source, sink, model, tmp_path / "cp.json", batch_size=50, output=broken,
            max_batch_retries=2, retry_backoff=stream.Backoff(base=0.001),
        ).run(idle_timeout=5)
    # The handler reported every record as a batch item failure; the runner retried the batch from the lowest
    # (twice, as the mapping's MaximumRetryAttempts would), three writer attempts each, then gave up.
    assert flaky.calls == 3 * 3
    assert not (tmp_path / "cp.json").exists()  # nothing checkpointed
    assert read_stream(kinesis, sink) == []

    consumer_for(kinesis, source, sink, model, tmp_path / "cp.json", batch_size=50).run(
        until=lambda s: s.records_read >= 40, idle_timeout=10
    )
    assert_exactly_once(read_stream(kinesis, sink), model, events)


def test_s3_checkpoints_and_s3_dead_letters(kinesis, streams, s3_buckets, model):
    s3 = s3_buckets("stream-state")
    source, sink = streams(1), streams(1)
    events = {i: ride_event(i) for i in range(30)}
    put_events(kinesis, source, [json.dumps(e).encode() for e in events.values()] + [data for data, _ in BAD_EVENTS])

    def make():
        return consumer_for(
            kinesis, source, sink, model, Path("unused"), batch_size=100,
            checkpoints=stream.checkpoint_store_from_uri(f"s3://stream-state/checkpoints/{source}.json", source, s3_client=s3),
            dead_letter=stream.dead_letter_from_uri("s3://stream-state/dead-letter", s3_client=s3),
        )

    assert make().run(until=lambda s: s.records_read >= 37, idle_timeout=10).dead_lettered == len(BAD_EVENTS)
    assert_exactly_once(read_stream(kinesis, sink), model, events)

    checkpoint = json.loads(s3.get_object(Bucket="stream-state", Key=f"checkpoints/{source}.json")["Body"].read())
    assert checkpoint["stream"] == source and set(checkpoint["shards"]) == {"shardId-000000000000"}
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="stream-state", Prefix="dead-letter/")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith(f"dead-letter/{source}/shardId-000000000000/") and keys[0].endswith(".jsonl")
    lines = [json.loads(line) for line in s3.get_object(Bucket="stream-state", Key=keys[0])["Body"].read().splitlines()]
    assert [line["reason"] for line in lines] == [reason for _, reason in BAD_EVENTS]

    assert make().run(idle_timeout=0.3).records_read == 0  # resumed from the S3 checkpoint


def _lambda_event(stream_name: str, payloads: list[bytes | str]) -> dict:
    records = []
    for i, data in enumerate(payloads):
        encoded = data if isinstance(data, str) else base64.b64encode(data).decode()
        sequence = f"4959{i:020d}"
        records.append(
            {
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": str(i), "sequenceNumber": sequence, "data": encoded,
                            "approximateArrivalTimestamp": 1654161514.132},
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream_name}",
            }
        )
    return {"Records": records}


def test_lambda_path_dead_letters_bad_records_and_reports_failed_writes(kinesis, streams, model):
    sink, dead = streams(1), streams(1)
    events = {i: ride_event(i) for i in range(10)}
    payloads = [json.dumps(e).encode() for e in events.values()] + ["%%% not base64 %%%", BAD_EVENTS[3][0]]
    event = _lambda_event("ride_events", payloads)
    loaded = StaticModel(model, VERSION).current
    dead_letter = stream.KinesisDeadLetter(kinesis, dead)

    result = stream.process_lambda_event(event, loaded, stream.KinesisWriter(kinesis, sink), dead_letter)

    assert result.batch_item_failures == []
    assert_exactly_once(read_stream(kinesis, sink), model, events)
    assert sorted(letter["reason"] for letter in read_stream(kinesis, dead)) == ["invalid_ride", "not_base64"]

    broken = stream.KinesisWriter(FlakyPuts(kinesis, always=True), sink, stream.Backoff(attempts=2, base=0.001))
    failed = stream.process_lambda_event(event, loaded, broken, dead_letter).batch_item_failures
    assert [item["itemIdentifier"] for item in failed] == [f"4959{i:020d}" for i in range(10)]


class RecordingHandler(stream.StreamHandler):
    """The real handler, remembering every event it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events: list[dict] = []

    def process(self, event):
        self.events.append(event)
        return super().process(event)


def test_the_runner_invokes_the_lambda_handler_with_event_source_mapping_events(kinesis, streams, model, tmp_path):
    source, sink = streams(2), streams(1)
    events = {i: ride_event(i) for i in range(50)}
    put_events(kinesis, source, [json.dumps(e).encode() for e in events.values()])
    handler = RecordingHandler(StaticModel(model, VERSION), stream.KinesisWriter(kinesis, sink), stream.LogDeadLetter())
    runner = stream.StreamConsumer(
        kinesis=kinesis, input_stream=source, checkpoints=stream.FileCheckpointStore(tmp_path / "cp.json", source),
        handler=handler, batch_size=20, poll_interval=0.05,
    )
    runner.run(until=lambda s: s.records_read >= 50, idle_timeout=10)

    arn = kinesis.describe_stream_summary(StreamName=source)["StreamDescriptionSummary"]["StreamARN"]
    records = [record for event in handler.events for record in event["Records"]]
    assert len(records) == 50 and all(len(event["Records"]) <= 20 for event in handler.events)
    for record in records:
        assert record["eventSource"] == "aws:kinesis" and record["eventSourceARN"] == arn
        shard, sequence = record["eventID"].split(":")
        assert shard.startswith("shardId-") and sequence == record["kinesis"]["sequenceNumber"]
    decoded = sorted(json.loads(base64.b64decode(r["kinesis"]["data"]))["ride_id"] for r in records)
    assert decoded == sorted(events)
    # What the function returns for such an event, through the Lambda-facing call:
    assert handler(handler.events[0]) == {"batchItemFailures": []}


class FailFrom:
    """PutRecords that fails (after its writer's retries) every record whose ride_id is >= `first_bad`, once."""

    def __init__(self, client, first_bad: int):
        self.client = client
        self.first_bad = first_bad
        self.failed_once = False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def put_records(self, StreamName, Records):  # noqa: N803 - boto3's parameter names
        bad = [json.loads(r["Data"])["prediction"]["ride_id"] >= self.first_bad for r in Records]
        if self.failed_once or not any(bad):
            return self.client.put_records(StreamName=StreamName, Records=Records)
        self.failed_once = True
        good = [r for r, b in zip(Records, bad) if not b]
        written = iter(self.client.put_records(StreamName=StreamName, Records=good)["Records"]) if good else iter(())
        results = [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"} if b else next(written) for b in bad]
        return {"FailedRecordCount": sum(bad), "Records": results}


def test_batch_item_failures_checkpoint_before_the_lowest_and_retry_from_it(kinesis, streams, model, tmp_path):
    """The event source mapping's contract, played by the runner: records before the lowest failure are done
    (checkpointed, never sent again); the batch is retried from the lowest failure; nothing is lost."""
    source, sink = streams(1), streams(1)
    events = {i: ride_event(i) for i in range(30)}
    put_events(kinesis, source, [json.dumps(e).encode() for e in events.values()])
    writer = stream.KinesisWriter(FailFrom(kinesis, first_bad=12), sink, stream.Backoff(attempts=1))

    stats = consumer_for(
        kinesis, source, sink, model, tmp_path / "cp.json", batch_size=100, output=writer,
        retry_backoff=stream.Backoff(base=0.001),
    ).run(until=lambda s: s.records_read >= 30, idle_timeout=10)

    assert stats.retried_batches == 1 and stats.records_read == 30
    outputs = read_stream(kinesis, sink)
    counts = Counter(item["prediction"]["ride_id"] for item in outputs)
    assert set(counts) == set(events)  # no loss
    assert all(counts[i] == 1 for i in range(30))  # the failed ones were not written the first time: no duplicate


def test_champion_and_shadow_consumers_each_emit_every_event_once_to_their_own_stream(kinesis, streams, tmp_path):
    """Two consumers (two mappings on AWS) on one input stream, each with its model, output stream and checkpoint,
    while events arrive; each is stopped once and restarted mid-stream."""
    champion_model, shadow_model = trained_model(2024, 1, seed=3), trained_model(2024, 2, seed=4)
    source, champion_out, shadow_out = streams(2), streams(1), streams(1)
    total = 400
    events = {i: ride_event(i) for i in range(total)}

    def consumer(name: str, sink: str, model, version: str) -> stream.StreamConsumer:
        handler = stream.StreamHandler(StaticModel(model, version), stream.KinesisWriter(kinesis, sink), stream.LogDeadLetter())
        return stream.StreamConsumer(
            kinesis=kinesis, input_stream=source, checkpoints=stream.FileCheckpointStore(tmp_path / f"{name}.json", source),
            handler=handler, batch_size=25, poll_interval=0.05,
        )

    def produce() -> None:
        for start in range(0, total, 20):
            put_events(kinesis, source, [json.dumps(events[i]).encode() for i in range(start, start + 20)])
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    done = {}
    try:
        for name, sink, model, version in (("champion", champion_out, champion_model, "7"), ("shadow", shadow_out, shadow_model, "8")):
            first = consumer(name, sink, model, version)
            runner = threading.Thread(target=first.run)
            runner.start()
            done[name] = (first, runner, sink, model, version)
        for first, runner, *_ in done.values():
            wait_for(lambda: first.stats.predictions_written >= 60, 30, "consumer progress", 0.01)
            first.stop()  # a clean stop while events are still arriving
            runner.join(30)
            assert not runner.is_alive()
    finally:
        for first, *_ in done.values():
            first.stop()
        producer.join(60)

    for name, (first, _, sink, model, version) in done.items():
        again = consumer(name, sink, model, version)
        again.run(until=lambda s: first.stats.predictions_written + s.predictions_written >= total, idle_timeout=20)
        assert first.stats.predictions_written + again.stats.predictions_written == total, name
        outputs = read_stream(kinesis, sink)
        assert {item["version"] for item in outputs} == {version}
        assert_exactly_once(outputs, model, events, version=version)
    # Two models, two answers: the shadow stream is not a copy of the champion's.
    champion = {o["prediction"]["ride_id"]: o["prediction"]["ride_duration"] for o in read_stream(kinesis, champion_out)}
    shadow = {o["prediction"]["ride_id"]: o["prediction"]["ride_duration"] for o in read_stream(kinesis, shadow_out)}
    assert champion.keys() == shadow.keys() and champion != shadow


# --- with the MLflow registry: the CLI as a process, and the Lambda handler -------------------------------------------


@pytest.fixture(scope="module")
def stream_model(registry_env: str):  # noqa: F811 - the imported fixture
    registry = make_registry(registry_env, "serving-stream")
    model = trained_model(2024, 1, seed=31)
    version = register(registry, model, "2024-02-01", promote=True)
    return registry, model, version


def _start_consumer(log_dir: Path, env: dict, args: list[str]) -> servers.ManagedProcess:
    process = servers.ManagedProcess(
        f"stream-consumer-{uuid.uuid4().hex[:6]}",
        [sys.executable, "-m", "deploy_assets.serving.stream", *args],
        log_dir=log_dir,
        env=env,
        cwd=servers.REPO_ROOT,
    )
    return process.start()


@pytest.mark.servers
def test_cli_consumer_sigint_restart_is_exactly_once_and_dead_letters_to_s3(
    stream_model, kinesis, streams, s3_buckets, moto_s3, mlflow_server, tmp_path
):
    registry, model, version = stream_model
    s3 = s3_buckets("stream-cli")
    source, sink = streams(2), streams(2)
    total = 500
    events = {i: ride_event(i) for i in range(total)}
    bad = [data for data, _ in BAD_EVENTS[:4]]
    env = serving_env(mlflow_server, moto_s3, registry.model_name, refresh_seconds=5)
    args = [
        "--input-stream", source, "--output-stream", sink, "--batch-size", "20", "--poll-interval", "0.1",
        "--checkpoint", str(tmp_path / "checkpoints.json"), "--dead-letter", "s3://stream-cli/dead",
    ]

    def produce(start: int, stop: int) -> None:
        for first in range(start, stop, 20):
            payloads = [json.dumps(events[i]).encode() for i in range(first, min(first + 20, stop))]
            if first == 100:
                payloads += bad
            put_events(kinesis, source, payloads)
            time.sleep(0.05)

    def output_count() -> int:
        return len(read_stream(kinesis, sink))

    first = _start_consumer(tmp_path, env, args)
    producer = threading.Thread(target=produce, args=(0, total))
    try:
        # Produce only once the consumer is reading, so it is stopped while events are still arriving.
        first.wait_until(lambda: "reading " in first.log_text(), 60, "consumer reading its shards", interval=0.1)
        producer.start()
        first.wait_until(lambda: output_count() >= 60, 60, "predictions from the first consumer", interval=0.1)
        assert first.stop() == 0  # SIGINT: finishes the micro-batch in flight, checkpoints, exits 0
        stopped = json.loads(first.log_text().strip().splitlines()[-1])
        assert stopped["stopped"] is True and 60 <= stopped["predictions_written"] < total
        producer.join(60)

        second = _start_consumer(tmp_path, env, args)
        try:
            second.wait_until(lambda: output_count() >= total, 60, f"{total} predictions", interval=0.2)
            time.sleep(0.5)
        finally:
            assert second.stop() == 0
    finally:
        if producer.is_alive():
            producer.join(60)
        first.stop()

    outputs = read_stream(kinesis, sink)
    assert_exactly_once(outputs, model, events, version=version)
    restarted = json.loads(second.log_text().strip().splitlines()[-1])
    assert stopped["predictions_written"] + restarted["predictions_written"] == total

    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="stream-cli", Prefix="dead/")["Contents"]]
    reasons = sorted(
        json.loads(line)["reason"] for key in keys for line in s3.get_object(Bucket="stream-cli", Key=key)["Body"].read().splitlines()
    )
    assert reasons == sorted(reason for _, reason in BAD_EVENTS[:4])


@pytest.mark.servers
def test_champion_and_shadow_cli_consumers_side_by_side_with_the_registry_aliases(
    stream_model, kinesis, streams, moto_s3, mlflow_server, tmp_path
):
    """`deploy-assets-stream` twice on one input stream: the champion (default alias) and the shadow
    (`--model-alias challenger`), each its own process, checkpoint and output stream; each emits every event once,
    scored by its own registry version."""
    from mlflow import MlflowClient

    registry, model, version = stream_model
    challenger_model = trained_model(2024, 2, seed=32)
    challenger = register(registry, challenger_model, "2024-03-01")
    # registry_uri too: without it the client takes the process's registry URI, which another test may have set.
    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    client.set_registered_model_alias(registry.model_name, "challenger", challenger)
    source, champion_out, shadow_out = streams(2), streams(1), streams(1)
    total = 300
    events = {i: ride_event(i) for i in range(total)}
    put_events(kinesis, source, [json.dumps(e).encode() for e in events.values()])
    env = serving_env(mlflow_server, moto_s3, registry.model_name, refresh_seconds=5)
    common = ["--input-stream", source, "--batch-size", "50", "--poll-interval", "0.1"]
    consumers = [
        _start_consumer(tmp_path, env, [*common, "--output-stream", champion_out, "--checkpoint", str(tmp_path / "champion.json")]),
        _start_consumer(
            tmp_path, env,
            [*common, "--output-stream", shadow_out, "--model-alias", "challenger", "--checkpoint", str(tmp_path / "shadow.json")],
        ),
    ]
    try:
        for process, sink in zip(consumers, (champion_out, shadow_out)):
            process.wait_until(lambda sink=sink: len(read_stream(kinesis, sink)) >= total, 90, f"{total} predictions in {sink}", 0.25)
    finally:
        codes = [process.stop() for process in consumers]
    assert codes == [0, 0]
    summaries = [json.loads(process.log_text().strip().splitlines()[-1]) for process in consumers]
    assert [s["alias"] for s in summaries] == ["champion", "challenger"]
    assert_exactly_once(read_stream(kinesis, champion_out), model, events, version=version)
    assert_exactly_once(read_stream(kinesis, shadow_out), challenger_model, events, version=challenger)


@pytest.mark.servers
def test_lambda_handler_with_the_registry_champion(stream_model, kinesis, streams, monkeypatch):
    registry, model, version = stream_model
    sink, dead = streams(1), streams(1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri)
    monkeypatch.setenv("DEPLOY_ASSETS_MODEL_NAME", registry.model_name)
    monkeypatch.setenv("DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM", sink)
    monkeypatch.setenv("DEPLOY_ASSETS_STREAM_DEAD_LETTER", f"kinesis://{dead}")
    monkeypatch.setattr(lambda_handler, "_handler", None)  # a cold start
    events = {i: ride_event(i) for i in range(25)}
    payloads = [json.dumps(e).encode() for e in events.values()] + [BAD_EVENTS[0][0]]

    assert stream.handler(_lambda_event("ride_events", payloads), None) == {"batchItemFailures": []}

    assert_exactly_once(read_stream(kinesis, sink), model, events, version=version)
    [letter] = read_stream(kinesis, dead)
    assert letter["reason"] == "invalid_json" and letter["stream"] == "ride_events"
