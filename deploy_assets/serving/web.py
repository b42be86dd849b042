"""HTTP prediction service: the registry's champion model behind FastAPI.

    python -m deploy_assets.serving.web --host 0.0.0.0 --port 9696

Endpoints (OpenAPI at /openapi.json, docs at /docs):
- `POST /predict`        one ride `{"PULocationID", "DOLocationID", "trip_distance", "ride_id"?}` →
                         `{"ride_id", "ride_duration", "model_version"}`; a deployment whose dataset has no
                         distance (FHV) takes no `trip_distance`, and one that keeps rides without a zone takes
                         zone -1 (unknown): the request is the deployment's dataset's ride
- `POST /predict/batch`  `{"rides": [...]}` (at most 10,000) → `{"model_version", "predictions": [{"ride_id",
                         "ride_duration"}, ...]}`, one model version for the whole batch
- `GET /health`          liveness: 200 whenever the process serves HTTP
- `GET /ready`           readiness: 200 with the model version once a model is loaded, else 503

One process serves one deployment's model (`DEPLOY_ASSETS_MODEL_NAME`) and rides (`DEPLOY_ASSETS_DATASET`,
`DEPLOY_ASSETS_MISSING_ZONES`: the deployment's own); with `DEPLOY_ASSETS_DEPLOYMENT_NAME` set, the same endpoints
also answer under `/deployments/<name>/`, the prefix the load balancer routes to that deployment's service
(terraform's `deployments` map).

With an API key configured (`DEPLOY_ASSETS_API_KEY`, on AWS a Secrets Manager secret), the two predict endpoints
answer 401 unless the request carries it in `X-API-Key`: only known callers score. Health and readiness stay open
(the load balancer probes them). Without a key, anyone who can reach the service scores, as before.

A body that is not UTF-8 → 400, larger than 8 MiB → 413. Invalid input → 422 `{"detail": [{"loc", "msg", "type"}, ...], "message": "<one line>"}` (zone ids 1..265,
trip_distance finite and ≥ 0, required fields, at most 10,000 rides); a ride the batch's valid-ride rule would drop
(e.g. `distance_above_100_mi`) or, under a `drop`/`fail` output policy, whose prediction falls outside the declared
range → 422 naming the rule (`type` `invalid_ride` / `prediction_outside_range`); no model loaded yet → 503.

Any deployable model (`core.contract`): the built-in regressor answers through `predict_arrays` on three
length-1 arrays; any other model through the contract (only the ride features it asks for, e.g. `PU_DO`, the
pickup hour from the optional `tpep_pickup_datetime`), the batch scorer's call (see `serving.features`). A newly
aliased version that fails validation never goes live: the previous champion keeps answering. Shadow mode
(`DEPLOY_ASSETS_SHADOW_ALIAS=challenger`) mirrors every request to the challenger off the request path and logs
the comparison; answers are unchanged, `/ready` reports the comparison under `shadow`. Handlers are `async def` (no thread-pool hop: the
prediction is a few microseconds) and return ready-made JSON bytes, so FastAPI does not re-validate the answer.
The model is read once per request from the model source, which swaps it atomically when @champion moves.
"""

import argparse
import json
import logging
import secrets
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from deploy_assets.core.contract import OUTPUT_POLICY, OutputPolicy
from deploy_assets.core.features import FEATURE_COLUMNS, RIDE_RULES, RideRules
from deploy_assets.serving.features import Refusal, score_rides
from deploy_assets.serving.model_source import ChampionModel, ModelSource
from deploy_assets.serving.schemas import (
    MAX_BATCH_RIDES,
    BatchPrediction,
    ErrorDetail,
    NotReady,
    Prediction,
    ride_batch_model,
    ride_model,
    summarize,
)
from deploy_assets.settings import ServingSettings

log = logging.getLogger(__name__)

# Bodies above this are refused with 413 before they are read: 10,000 rides with long ride ids fit comfortably.
MAX_BODY_BYTES = 8 * 1024 * 1024
JSON_MEDIA_TYPE = "application/json"
API_KEY_HEADER = "X-API-Key"
NOT_READY_RESPONSE = {503: {"model": NotReady, "description": "no model loaded yet"}}
PREDICT_RESPONSES = {
    **NOT_READY_RESPONSE,
    # FastAPI's own answer when the body cannot even be decoded (not UTF-8): {"detail": "There was an error ..."}
    400: {"model": ErrorDetail, "description": "the body could not be decoded"},
    413: {"model": ErrorDetail, "description": f"body larger than {MAX_BODY_BYTES} bytes"},
}


class BodySizeLimit:
    """Pure ASGI middleware: 413 for a declared Content-Length above the limit (costs one header scan)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    try:
                        too_big = int(value) > self.max_bytes
                    except ValueError:
                        too_big = False
                    if too_big:
                        response = JSONResponse(
                            {"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413
                        )
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def _json(content: dict, status_code: int = 200) -> Response:
    return Response(json.dumps(content, allow_nan=False).encode(), status_code=status_code, media_type=JSON_MEDIA_TYPE)


def _not_ready(model_source) -> Response:
    status = getattr(model_source, "status", None)
    detail = "no model loaded yet"
    if status is not None:
        info = status()
        detail = f"no model loaded yet for models:/{info.get('model_name')}@{info.get('alias')}"
        if info.get("last_error"):
            detail += f" (last error: {info['last_error']})"
    return _json({"status": "not_ready", "detail": detail}, status_code=503)


def _refused(refused: dict[int, Refusal], prefix: tuple = ()) -> Response:
    """422 for rides scoring refused, in the shape of the validation errors."""
    detail = [
        {"loc": ["body", *prefix, *((row,) if prefix else ())], "msg": refusal.detail, "type": refusal.reason}
        for row, refusal in sorted(refused.items())
    ]
    return _json({"detail": detail, "message": summarize(detail)}, status_code=422)


def _known_caller(api_key: str):
    """A FastAPI dependency: 401 unless the request's `X-API-Key` is `api_key` (compared in constant time)."""
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the service's API key")
    expected = api_key.encode()

    async def known_caller(given: str | None = Security(header)) -> None:
        if given is None or not secrets.compare_digest(given.encode(), expected):
            raise HTTPException(401, detail=f"missing or wrong {API_KEY_HEADER}", headers={"WWW-Authenticate": "ApiKey"})

    return known_caller


def create_app(
    model_source: ModelSource,
    *,
    manage_lifecycle: bool = True,
    rules: RideRules = RIDE_RULES,
    policy: OutputPolicy = OUTPUT_POLICY,
    api_key: str | None = None,
    deployment: str | None = None,
    features: tuple[str, ...] = FEATURE_COLUMNS,
) -> FastAPI:
    """The FastAPI app serving `model_source` (a `ChampionModel`, a `StaticModel`, or anything with `.current`),
    holding rides to `rules` and answers to `policy` (the deployment's; the batch defaults). A request is a ride
    of the deployment's dataset (its ride `features`: no trip_distance on FHV; zone -1 accepted where `rules` keep
    rides without a zone), so the online schema is the one its batch rides have.

    With `deployment`, every route is also served under `/deployments/<deployment>` (one process per deployment;
    a load balancer routes each prefix to its deployment's service, and `/…` stays the default one's).

    With `manage_lifecycle`, the app's lifespan calls `model_source.start()` at startup (a `ChampionModel` then
    loads the champion in the background: /ready answers 503 until it has) and `stop()` at shutdown. With
    `api_key`, the predict endpoints answer 401 to a request without it (no dependency at all without one).
    """
    ride_type = ride_model(features, rules.keep_missing_zones)
    batch_type = ride_batch_model(ride_type)
    callers = [Depends(_known_caller(api_key))] if api_key else []
    predict_responses = (
        {**PREDICT_RESPONSES, 401: {"model": ErrorDetail, "description": f"missing or wrong {API_KEY_HEADER}"}}
        if api_key
        else PREDICT_RESPONSES
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_lifecycle and hasattr(model_source, "start"):
            model_source.start()
        try:
            yield
        finally:
            if manage_lifecycle and hasattr(model_source, "stop"):
                model_source.stop()

    app = FastAPI(
        title="Trip duration prediction",
        version="1",
        description="Predicted NYC taxi trip duration (minutes) from the registry's champion model.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit)
    app.state.model_source = model_source

    @app.exception_handler(RequestValidationError)
    async def validation_failed(request: Request, error: RequestValidationError) -> Response:
        detail = [
            {
                "loc": [part if isinstance(part, (str, int)) else str(part) for part in item.get("loc", ())],
                "msg": str(item.get("msg", "")),
                "type": str(item.get("type", "")),
            }
            for item in error.errors()
        ]
        return _json({"detail": detail, "message": summarize(detail)}, status_code=422)

    routes = APIRouter()

    @routes.get("/health", summary="Liveness: the process answers HTTP")
    async def health() -> dict:
        return {"status": "ok"}

    @routes.get("/ready", summary="Readiness: a model is loaded", responses=NOT_READY_RESPONSE)
    async def ready() -> Response:
        loaded = model_source.current
        if loaded is None:
            return _not_ready(model_source)
        answer = {"status": "ready", "model_version": loaded.version, "model_uri": loaded.model_uri}
        shadow = getattr(model_source, "shadow", None)
        if shadow is not None:
            answer["shadow"] = shadow.status()
        return _json(answer)

    @routes.post(
        "/predict",
        response_model=Prediction,
        summary="Predict the duration of one ride",
        responses=predict_responses,
        dependencies=callers,
    )
    async def predict(ride: ride_type) -> Response:
        loaded = model_source.current  # one read: the version reported is the model that answered
        if loaded is None:
            return _not_ready(model_source)
        (duration,), refused = score_rides(loaded.model, [ride], rules, policy)
        if refused:
            return _refused(refused)
        return _json({"ride_id": ride.ride_id, "ride_duration": duration, "model_version": loaded.version})

    @routes.post(
        "/predict/batch",
        response_model=BatchPrediction,
        summary=f"Predict the durations of up to {MAX_BATCH_RIDES} rides with one model version",
        responses=predict_responses,
        dependencies=callers,
    )
    async def predict_batch(batch: batch_type) -> Response:
        loaded = model_source.current
        if loaded is None:
            return _not_ready(model_source)
        durations, refused = score_rides(loaded.model, batch.rides, rules, policy)
        if refused:
            return _refused(refused, ("rides",))
        predictions = [
            {"ride_id": ride.ride_id, "ride_duration": duration} for ride, duration in zip(batch.rides, durations)
        ]
        return _json({"model_version": loaded.version, "predictions": predictions})

    app.include_router(routes)
    if deployment:
        app.include_router(routes, prefix=f"/deployments/{deployment}")
    return app


def app_from_env() -> FastAPI:
    """`uvicorn --factory deploy_assets.serving.web:app_from_env`: the champion model configured from the env."""
    settings = ServingSettings.from_env()
    return app_for(ChampionModel.from_settings(settings), settings)


def app_for(model_source: ModelSource, settings: ServingSettings) -> FastAPI:
    """The app of the deployment `settings` name: its rides (dataset, missing-zone rule), API key and prefix."""
    return create_app(
        model_source,
        rules=settings.ride_rules,
        api_key=settings.api_key,
        deployment=settings.deployment,
        features=settings.ride_dataset.features,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m deploy_assets.serving.web",
        description="Serve trip-duration predictions over HTTP from models:/$DEPLOY_ASSETS_MODEL_NAME@champion "
        "(MLFLOW_TRACKING_URI, DEPLOY_ASSETS_MODEL_REFRESH_SECONDS; DEPLOY_ASSETS_API_KEY: the X-API-Key callers send).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=9696)
    parser.add_argument("--model-name", default=None, help="registered model (default: $DEPLOY_ASSETS_MODEL_NAME)")
    parser.add_argument("--refresh-seconds", type=float, default=None, help="alias poll interval")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    args = parser.parse_args(argv)

    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServingSettings.from_env()
    source = ChampionModel.from_settings(settings, model_name=args.model_name, refresh_seconds=args.refresh_seconds)
    uvicorn.run(
        app_for(source, settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
