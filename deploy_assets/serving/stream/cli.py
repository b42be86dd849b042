"""`deploy-assets-stream` (= `python -m deploy_assets.serving.stream`): the development runner from the shell.

    deploy-assets-stream --input-stream ride_events --output-stream ride_predictions \
        --dead-letter s3://bucket/dead-letter --checkpoint s3://bucket/checkpoints/champion.json
    deploy-assets-stream --model-alias challenger --output-stream ride_predictions_shadow \
        --checkpoint .data/stream/shadow.json ...                       # the shadow consumer, alongside

Flags override the environment the Lambda reads (`DEPLOY_ASSETS_RIDE_EVENTS_STREAM`,
`DEPLOY_ASSETS_RIDE_PREDICTIONS_STREAM` / `PREDICTIONS_STREAM_NAME`, `DEPLOY_ASSETS_STREAM_DEAD_LETTER`,
`DEPLOY_ASSETS_STREAM_CHECKPOINT`, `MLFLOW_TRACKING_URI`, `DEPLOY_ASSETS_MODEL_NAME`, `DEPLOY_ASSETS_MODEL_ALIAS`,
`DEPLOY_ASSETS_MODEL_REFRESH_SECONDS`; the deployment's rides: `DEPLOY_ASSETS_DATASET`,
`DEPLOY_ASSETS_MISSING_ZONES`). SIGINT/SIGTERM stop after the batch in flight; the last line printed is
the run's statistics as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal

from deploy_assets.serving.model_source import ChampionModel
from deploy_assets.serving.stream.checkpoints import checkpoint_store_from_uri
from deploy_assets.serving.stream.dead_letters import dead_letter_from_uri
from deploy_assets.serving.stream.kinesis_writer import KinesisWriter, make_client
from deploy_assets.serving.stream.lambda_handler import StreamHandler
from deploy_assets.serving.stream.local_runner import DEFAULT_BATCH_SIZE, StreamConsumer
from deploy_assets.settings import ServingSettings

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    settings = ServingSettings.from_env()
    parser = argparse.ArgumentParser(
        prog="deploy-assets-stream",
        description="Score ride events from a Kinesis stream with models:/NAME@ALIAS, through the Lambda handler.",
    )
    parser.add_argument("--input-stream", default=settings.ride_events_stream)
    parser.add_argument("--output-stream", default=settings.ride_predictions_stream)
    parser.add_argument(
        "--dead-letter",
        default=settings.stream_dead_letter,
        help="kinesis://STREAM or s3://BUCKET/PREFIX (default: log only)",
    )
    parser.add_argument(
        "--checkpoint",
        default=settings.stream_checkpoint,
        help="checkpoint file path or s3://BUCKET/KEY (default: .data/stream/checkpoints-<input stream>.json)",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="records per GetRecords call")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds to wait when caught up")
    parser.add_argument("--initial-position", choices=["TRIM_HORIZON", "LATEST"], default="TRIM_HORIZON")
    parser.add_argument("--model-name", default=None, help="registered model (default: $DEPLOY_ASSETS_MODEL_NAME)")
    parser.add_argument("--model-alias", default=None, help="registry alias (default: $DEPLOY_ASSETS_MODEL_ALIAS or champion)")
    parser.add_argument("--refresh-seconds", type=float, default=None, help="alias poll interval")
    parser.add_argument("--max-batch-retries", type=int, default=2, help="retries of a batch with failed writes, then exit 1")
    parser.add_argument("--endpoint-url", default=None, help="AWS endpoint (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--idle-exit-seconds", type=float, default=None, help="exit after this long without records")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.input_stream or not args.output_stream:
        parser.error("--input-stream and --output-stream (or their environment variables) are required")

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kinesis = make_client("kinesis", args.endpoint_url)
    s3 = None
    if (args.dead_letter or "").startswith("s3://") or (args.checkpoint or "").startswith("s3://"):
        s3 = make_client("s3", args.endpoint_url)
    model = ChampionModel.from_settings(
        settings, model_name=args.model_name, alias=args.model_alias, refresh_seconds=args.refresh_seconds
    )
    handler = StreamHandler(
        model.start(),
        KinesisWriter(kinesis, args.output_stream),
        dead_letter_from_uri(args.dead_letter, kinesis_client=kinesis, s3_client=s3),
        refresh_on_invoke=False,  # the model source's own thread follows the alias
        features=settings.ride_dataset.features,
        rules=settings.ride_rules,
    )
    consumer = StreamConsumer(
        kinesis=kinesis,
        input_stream=args.input_stream,
        checkpoints=checkpoint_store_from_uri(args.checkpoint, args.input_stream, s3_client=s3),
        handler=handler,
        batch_size=args.batch_size,
        poll_interval=args.poll_interval,
        initial_position=args.initial_position,
        max_batch_retries=args.max_batch_retries,
    )

    def request_stop(signum, _frame) -> None:
        log.info("signal %s: stopping after the micro-batch in flight", signal.Signals(signum).name)
        consumer.stop()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    log.info(
        "consuming %s → %s with models:/%s@%s (dead letters: %s, checkpoints: %s)",
        args.input_stream, args.output_stream, model.model_name, model.alias,
        handler.dead_letter.destination, consumer.checkpoints.location,
    )
    try:
        stats = consumer.run(idle_timeout=args.idle_exit_seconds)
    finally:
        model.stop()
    print(json.dumps({"stopped": True, "alias": model.alias, **stats.as_dict()}), flush=True)
    return 0
