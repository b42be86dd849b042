"""Stream scoring: ride events from Kinesis in, prediction events out, in micro-batches.

Production: an AWS Lambda function per consumer behind a Kinesis event source mapping (`lambda_handler.handler`;
terraform/lambda.tf deploys the champion consumer and a shadow one scoring with @challenger into a stream of its
own). Development: `deploy-assets-stream` (`cli.py`), a GetRecords loop (`local_runner.py`) that calls the very
same handler and does what the mapping would do with its answer.

    events.py          the event contract: parse and validate a ride event, the prediction event, dead letters
    batch.py           one micro-batch: validate → score (`serving.features.score_rides`) → write → dead-letter
    kinesis_writer.py  PutRecords in chunks, retrying only failed records; boto3 clients
    dead_letters.py    where invalid events go with their reason: kinesis://, s3://, or the log
    lambda_handler.py  the Lambda contract: decode the event, `batchItemFailures`, configuration from the env
    local_runner.py    the development loop over the handler, with checkpoints (checkpoints.py)
    cli.py             `deploy-assets-stream`
"""

from deploy_assets.serving.stream.batch import BatchOutcome, handle_records
from deploy_assets.serving.stream.checkpoints import (
    CheckpointStore,
    FileCheckpointStore,
    S3CheckpointStore,
    checkpoint_store_from_uri,
)
from deploy_assets.serving.stream.cli import main
from deploy_assets.serving.stream.dead_letters import (
    DeadLetterSink,
    KinesisDeadLetter,
    LogDeadLetter,
    S3DeadLetter,
    dead_letter_from_uri,
)
from deploy_assets.serving.stream.events import (
    MODEL_LABEL,
    DeadLetter,
    InvalidEvent,
    StreamRecord,
    parse_event,
    prediction_event,
)
from deploy_assets.serving.stream.kinesis_writer import Backoff, KinesisWriter, WriteFailed, make_client
from deploy_assets.serving.stream.lambda_handler import LambdaResult, StreamHandler, handler, process_lambda_event
from deploy_assets.serving.stream.local_runner import ConsumerStats, StreamConsumer, lambda_event

__all__ = [
    "MODEL_LABEL",
    "Backoff",
    "BatchOutcome",
    "CheckpointStore",
    "ConsumerStats",
    "DeadLetter",
    "DeadLetterSink",
    "FileCheckpointStore",
    "InvalidEvent",
    "KinesisDeadLetter",
    "KinesisWriter",
    "LambdaResult",
    "LogDeadLetter",
    "S3CheckpointStore",
    "S3DeadLetter",
    "StreamConsumer",
    "StreamHandler",
    "StreamRecord",
    "WriteFailed",
    "checkpoint_store_from_uri",
    "dead_letter_from_uri",
    "handle_records",
    "handler",
    "lambda_event",
    "main",
    "make_client",
    "parse_event",
    "prediction_event",
    "process_lambda_event",
]
