#!/usr/bin/env python3
"""Stream-scoring benchmark: events/s through the Kinesis consumer, end to end, against moto's Kinesis server.

    .venv/bin/python bench/bench_stream.py                 # 20,000 events, ~1 min on 2 cores
    .venv/bin/python bench/bench_stream.py --events 50000 --batch-size 1000

Starts `moto_server` on 127.0.0.1 (its own process), creates an input and an output stream (`--shards` each),
and measures, with the project's stream handler (the Lambda's `StreamHandler`) fed by the development runner
(`StreamConsumer`, playing the event source mapping) in this process (a model trained on a generated month, held
by `StaticModel`: loading it from MLflow is a start-up cost, not a per-event one):

1. **produce**: putting the events (zoomcamp-shaped JSON, PutRecords of 500) — the producer's rate;
2. **drain**: the consumer working off that backlog: read (GetRecords) → Lambda-shaped event (base64) → the
   handler: validate → score → PutRecords to the output stream → checkpoint per micro-batch; events/s, with the seconds spent in each Kinesis call, scoring
   and checkpointing;
3. **live**: producer and consumer at once on fresh streams: events/s from the first put to the last
   checkpoint, and the per-event lag (output written − input put) p50/p99.

Every output stream is read back: exactly one prediction per event is required (`exactly_once`). moto is a
Python emulator (its GetRecords scans the shard), so the numbers are a floor for the consumer, not Kinesis's
limits (1 MB/s or 1,000 records/s written per shard on AWS). Prints a table and `BENCH_JSON {...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy_assets.serving import stream  # noqa: E402
from deploy_assets.serving.model_source import StaticModel  # noqa: E402
from deploy_assets_tests import servers  # noqa: E402 - process handling for moto (start, SIGINT, SIGKILL)


class TimedClient:
    """Wraps a boto3 client, adding up the seconds spent in each API call."""

    def __init__(self, client):
        self._client = client
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return timed


class TimedCheckpoints(stream.FileCheckpointStore):
    seconds = 0.0

    def save(self, shard_id, sequence_number):
        start = time.perf_counter()
        super().save(shard_id, sequence_number)
        self.seconds += time.perf_counter() - start


def ride_event(i: int) -> bytes:
    return json.dumps(
        {
            "ride": {"PULocationID": 1 + (i * 7) % 265, "DOLocationID": 1 + (i * 13) % 265, "trip_distance": round(0.3 + (i % 40) * 0.7, 2)},
            "ride_id": i,
        }
    ).encode()


def create_streams(kinesis, shards: int) -> tuple[str, str]:
    names = (f"bench-in-{uuid.uuid4().hex[:8]}", f"bench-out-{uuid.uuid4().hex[:8]}")
    for name in names:
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return names


def produce(kinesis, name: str, events: range, put_times: dict | None = None, chunk: int = 500) -> float:
    start = time.perf_counter()
    for first in range(events.start, events.stop, chunk):
        ids = range(first, min(first + chunk, events.stop))
        now = time.time()
        response = kinesis.put_records(StreamName=name, Records=[{"Data": ride_event(i), "PartitionKey": str(i)} for i in ids])
        if response["FailedRecordCount"]:
            raise SystemExit(f"producer: {response['FailedRecordCount']} records failed")
        if put_times is not None:
            for i in ids:
                put_times[i] = now
    return time.perf_counter() - start


def read_back(kinesis, name: str) -> list[dict]:
    out = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not response["Records"]:
                break
            out.extend(
                {**json.loads(r["Data"]), "_arrival": r["ApproximateArrivalTimestamp"].timestamp()} for r in response["Records"]
            )
            iterator = response.get("NextShardIterator")
    return out


def exactly_once(outputs: list[dict], total: int) -> bool:
    counts = Counter(item["prediction"]["ride_id"] for item in outputs)
    return len(counts) == total and set(counts.values()) == {1} and set(counts) == set(range(total))


def make_consumer(client, source: str, sink: str, model, checkpoint: Path, batch_size: int):
    # The production Lambda handler (a `StreamHandler`), fed by the development runner as a mapping would feed it.
    handler = stream.StreamHandler(StaticModel(model, "bench"), stream.KinesisWriter(client, sink), stream.LogDeadLetter())
    return stream.StreamConsumer(
        kinesis=client,
        input_stream=source,
        handler=handler,
        checkpoints=TimedCheckpoints(checkpoint, source),
        batch_size=batch_size,
        poll_interval=0.02,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=500, help="records per GetRecords (micro-batch)")
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=300, help="cap per phase (s)")
    args = parser.parse_args()

    from deploy_assets.core.features import clean_trips
    from deploy_assets.core.generate import generate_month
    from deploy_assets.core.model import train_duration_model

    model = train_duration_model([clean_trips(generate_month(2024, 1, args.train_rows, seed=1), 2024, 1).table]).model
    workdir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    os.environ.update(servers.DUMMY_AWS_ENV)
    moto, endpoint = servers.start_moto(workdir)
    results: dict = {"config": {**vars(args), "cpus": os.cpu_count()}}
    try:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        kinesis = stream.make_client("kinesis")

        # 1 + 2: produce a backlog, then drain it.
        source, sink = create_streams(kinesis, args.shards)
        load_before = os.getloadavg()[0]
        produce_s = produce(kinesis, source, range(args.events))
        client = TimedClient(kinesis)
        consumer = make_consumer(client, source, sink, model, workdir / "drain.json", args.batch_size)
        start = time.perf_counter()
        stats = consumer.run(until=lambda s: s.records_read >= args.events, idle_timeout=args.timeout)
        drain_s = time.perf_counter() - start
        kinesis_s = sum(client.seconds.values())
        results["produce"] = {"events": args.events, "seconds": produce_s, "events_per_s": args.events / produce_s}
        results["drain"] = {
            "events": stats.records_read,
            "seconds": drain_s,
            "events_per_s": stats.records_read / drain_s,
            "batches": stats.batches,
            "kinesis_seconds": dict(client.seconds),
            "kinesis_calls": dict(client.calls),
            "checkpoint_seconds": consumer.checkpoints.seconds,
            "scoring_and_rest_seconds": drain_s - kinesis_s - consumer.checkpoints.seconds,
            "exactly_once": exactly_once(read_back(kinesis, sink), args.events),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": os.getloadavg()[0],
        }

        # 3: live — producer and consumer at once.
        source, sink = create_streams(kinesis, args.shards)
        put_times: dict[int, float] = {}
        consumer = make_consumer(kinesis, source, sink, model, workdir / "live.json", args.batch_size)
        runner = threading.Thread(target=lambda: consumer.run(until=lambda s: s.records_read >= args.events, idle_timeout=args.timeout))
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        runner.start()
        produce(kinesis, source, range(args.events), put_times, chunk=100)
        runner.join(args.timeout)
        live_s = time.perf_counter() - start
        outputs = read_back(kinesis, sink)
        lags = sorted(item["_arrival"] - put_times[item["prediction"]["ride_id"]] for item in outputs)
        results["live"] = {
            "events": consumer.stats.records_read,
            "seconds": live_s,
            "events_per_s": consumer.stats.records_read / live_s,
            "lag_p50_s": lags[len(lags) // 2] if lags else None,
            "lag_p99_s": lags[int(len(lags) * 0.99)] if lags else None,
            "exactly_once": exactly_once(outputs, args.events),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": os.getloadavg()[0],
        }
    finally:
        moto.stop()

    drain, live = results["drain"], results["live"]
    print(f"\n{'phase':8} {'events':>7} {'seconds':>8} {'events/s':>9}  notes")
    print(f"{'produce':8} {args.events:>7} {results['produce']['seconds']:>8.2f} {results['produce']['events_per_s']:>9.0f}  PutRecords ×500")
    print(
        f"{'drain':8} {drain['events']:>7} {drain['seconds']:>8.2f} {drain['events_per_s']:>9.0f}  "
        + ", ".join(f"{k} {v:.2f}s" for k, v in drain["kinesis_seconds"].items())
        + f", checkpoints {drain['checkpoint_seconds']:.2f}s, scoring+rest {drain['scoring_and_rest_seconds']:.2f}s; "
        f"exactly once: {drain['exactly_once']}"
    )
    print(
        f"{'live':8} {live['events']:>7} {live['seconds']:>8.2f} {live['events_per_s']:>9.0f}  lag p50 {live['lag_p50_s']:.3f}s "
        f"p99 {live['lag_p99_s']:.3f}s; exactly once: {live['exactly_once']}"
    )
    print(f"load average (1 min) before drain / live: {drain['loadavg_1m_before']:.2f} / {live['loadavg_1m_before']:.2f}")
    print("BENCH_JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
