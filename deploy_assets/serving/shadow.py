"""Shadow mode for the web service and the stream consumer: mirror traffic to a second model (`@challenger`)
without changing any answer, and log how the two compare.

`ShadowMirror.submit` is called by `serving.features.score_rides` after the primary model answered; it only puts
the rides and answers on a bounded queue (dropping, and counting, when full), so a request never waits for the
shadow model and never fails because of it. A worker thread scores them with the shadow source's current model and
accumulates (`core.challenger.ComparisonTotals`, per pair of versions): rides compared, mean absolute difference,
share differing by more than `threshold_minutes`, logged every `log_every_rides` rides and reported by `status()`.

Enable with `DEPLOY_ASSETS_SHADOW_ALIAS=challenger` (see `serving.model_source.ChampionModel.from_env`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import numpy as np

from deploy_assets.core.challenger import DEFAULT_THRESHOLD_MINUTES, ComparisonTotals

log = logging.getLogger(__name__)


class ShadowMirror:
    def __init__(
        self,
        source,
        threshold_minutes: float = DEFAULT_THRESHOLD_MINUTES,
        log_every_rides: int = 1000,
        max_pending: int = 256,
    ):
        self.source = source  # a ChampionModel for the shadow alias (or anything with `.current`)
        self.threshold_minutes = float(threshold_minutes)
        self.log_every_rides = log_every_rides
        self._queue: queue.Queue = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.totals: ComparisonTotals | None = None  # per (answering, shadow) version pair; reset when one moves
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None
        self._logged_at = 0

    # --- request side: never blocks, never raises ----------------------------------------------------------------

    def submit(self, columns: dict, durations: np.ndarray, version: str) -> None:
        if self._thread is None:
            self.start()
        try:
            self._queue.put_nowait((columns, durations, version))
        except queue.Full:
            with self._lock:
                self.dropped += len(durations)

    # --- worker -----------------------------------------------------------------------------------------------------

    def compare(self, columns: dict, durations: np.ndarray, version: str) -> None:
        """Score with the shadow model and accumulate (the worker's step; callable directly in tests)."""
        refresh = getattr(self.source, "refresh_if_due", None)
        if refresh is not None:
            refresh()
        loaded = self.source.current
        if loaded is None:
            return
        shadow = loaded.model.predict_rides(columns)
        with self._lock:
            totals = self.totals
            if totals is None or (totals.champion_version, totals.challenger_version) != (str(version), loaded.version):
                totals = self.totals = ComparisonTotals(version, loaded.version, self.threshold_minutes)
                self._logged_at = 0
            totals.add(durations, shadow)
            due = totals.rides - self._logged_at >= self.log_every_rides
            if due:
                self._logged_at = totals.rides
            result = totals.result()
        if due:
            log.info(
                "shadow: version %s (answering) vs %s over %d rides: mean |diff| %.3f min, %.2f%% differ by > %g min",
                version, loaded.version, result.rides, result.mean_abs_diff,
                100 * result.share_differing, self.threshold_minutes,
            )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            try:
                self.compare(*item)
            except Exception as error:  # noqa: BLE001 - the shadow must never affect serving
                with self._lock:
                    self.errors += 1
                    self.last_error = f"{type(error).__name__}: {error}"
                log.warning("shadow scoring failed: %s", self.last_error)
            finally:
                self._queue.task_done()

    def start(self) -> ShadowMirror:
        with self._lock:
            if self._thread is None:
                if hasattr(self.source, "start"):
                    self.source.start()
                self._thread = threading.Thread(target=self._run, name="shadow-mirror", daemon=True)
                self._thread.start()
        return self

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted batch was compared (tests, shutdown); False on timeout."""
        end = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def stop(self, timeout: float = 10.0) -> None:
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
        self._thread = None
        if hasattr(self.source, "stop"):
            self.source.stop(timeout)

    def status(self) -> dict:
        with self._lock:
            result = self.totals.result() if self.totals is not None else None
            return {
                "alias": getattr(self.source, "alias", None),
                "versions": [result.champion_version, result.challenger_version] if result else None,
                "rides": result.rides if result else 0,
                "mean_abs_diff": result.mean_abs_diff if result else None,
                "share_differing": result.share_differing if result else None,
                "threshold_minutes": self.threshold_minutes,
                "dropped": self.dropped,
                "errors": self.errors,
                "last_error": self.last_error,
            }
