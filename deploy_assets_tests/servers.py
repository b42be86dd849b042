"""Start and stop real server processes for tests: moto's S3 server, an MLflow tracking server, the Dagster daemon.

No Dagster or pytest imports: plain subprocess + /proc, usable from fixtures, scripts or a REPL.

Every process is started in its own session (`start_new_session=True`, so its pid is also its process-group id)
with SIGINT/SIGTERM reset to their default dispositions (a parent started with `nohup … &` would otherwise
hand down "ignore SIGINT" and the server could never be stopped gracefully). `ManagedProcess.stop()` sends
SIGINT to the whole group, waits, then SIGKILLs the group and any descendant that left it. Every pid seen in the
process tree is recorded (with its start time, so a recycled pid is not mistaken for a survivor), and
`surviving_processes()` lists any that are still alive: a test session can assert that nothing outlived it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent

# Dummy credentials for emulated S3; real ones never appear in tests.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# Variables that could point a child at a real account or profile instead of the dummy credentials above.
_AWS_VARIABLES_TO_DROP = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
# No network here: keep MLflow from trying to send telemetry.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"}

T = TypeVar("T")


class ServerError(RuntimeError):
    """A managed process failed to start, died, or did not become ready; the message ends with its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on the rare race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary(name: str) -> str:
    """An executable from the running interpreter's environment (the venv), else from PATH."""
    candidate = BIN_DIR / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


# --- /proc helpers (Linux); elsewhere fall back to os.kill(pid, 0) -----------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str
    ppid: int
    pgid: int
    start_time: int  # clock ticks since boot: (pid, start_time) identifies one process even if the pid is reused


def _proc_info(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ... starttime(22nd field) ..." — comm may contain spaces or ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return ProcInfo(pid=pid, state=fields[0], ppid=int(fields[1]), pgid=int(fields[2]), start_time=int(fields[19]))
    except (IndexError, ValueError):
        return None


def _all_processes() -> list[ProcInfo]:
    infos = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _proc_info(int(entry))
            if info is not None:
                infos.append(info)
    return infos


_HAVE_PROC = os.path.isdir("/proc/self") and _proc_info(os.getpid()) is not None


def is_alive(pid: int, start_time: int | None = None) -> bool:
    """True while `pid` runs (zombies count as dead; with `start_time`, a recycled pid counts as dead too)."""
    if _HAVE_PROC:
        info = _proc_info(pid)
        if info is None or info.state in ("Z", "X", "x"):
            return False
        return start_time is None or info.start_time == start_time
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_tree(root_pid: int, pgid: int | None = None) -> list[ProcInfo]:
    """`root_pid`, its descendants, and every member of process group `pgid` (live, non-zombie)."""
    if not _HAVE_PROC:
        return []
    infos = [info for info in _all_processes() if info.state not in ("Z", "X", "x")]
    children: dict[int, list[ProcInfo]] = {}
    for info in infos:
        children.setdefault(info.ppid, []).append(info)
    found: dict[int, ProcInfo] = {}
    stack = [info for info in infos if info.pid == root_pid or (pgid is not None and info.pgid == pgid)]
    while stack:
        info = stack.pop()
        if info.pid in found:
            continue
        found[info.pid] = info
        stack.extend(children.get(info.pid, []))
    return list(found.values())


# --- managed processes --------------------------------------------------------------------------------------------

_REGISTRY: list[ManagedProcess] = []
_REGISTRY_LOCK = threading.Lock()


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved in the parent: the child between fork and exec should do as little as possible
_PR_SET_PDEATHSIG = 1


def _reset_signals_in_child() -> None:  # runs in the forked child, before exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _PRCTL is not None:
        # Best effort if the test process is killed outright (no finalizers run): the leader gets SIGINT and
        # shuts down like on Ctrl-C. Its own children are only reached through the leader's shutdown.
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)


class ManagedProcess:
    """One server process (and everything it spawns), logging to `<log_dir>/<name>.log`."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_dir: str | os.PathLike,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
    ):
        self.name = name
        self.args = [str(arg) for arg in args]
        self.env = dict(os.environ if env is None else env)
        self.cwd = str(cwd) if cwd is not None else None
        self.log_path = Path(log_dir) / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.pgid: int | None = None
        # pid -> start time of every process seen in this process's tree
        self.recorded: dict[int, int | None] = {}
        self.started_at: float | None = None
        self.stopped = False
        # Processes this one needs and that stop with it, after it (a daemon's code server).
        self.companions: list[ManagedProcess] = []

    # lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.args)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_reset_signals_in_child,
            )
        self.pgid = self.popen.pid  # a session leader's pgid is its pid
        self.started_at = time.monotonic()
        leader = _proc_info(self.popen.pid) if _HAVE_PROC else None
        self.recorded[self.popen.pid] = leader.start_time if leader else None
        with _REGISTRY_LOCK:
            _REGISTRY.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def record_tree(self) -> list[int]:
        """Record (and return) every live pid in this process's tree and process group."""
        if self.popen is None:
            return []
        tree = process_tree(self.popen.pid, self.pgid)
        for info in tree:
            self.recorded.setdefault(info.pid, info.start_time)
        return [info.pid for info in tree]

    def survivors(self) -> list[int]:
        """Recorded pids that are still alive (the leader counts until it has been reaped)."""
        alive = []
        for pid, start_time in self.recorded.items():
            if self.popen is not None and pid == self.popen.pid:
                if self.popen.poll() is None:
                    alive.append(pid)
            elif is_alive(pid, start_time):
                alive.append(pid)
        return alive

    def stop(self, timeout: float = 20.0, kill_timeout: float = 10.0) -> int | None:
        """SIGINT the process group, wait up to `timeout` s, then SIGKILL the group and stray descendants.

        Returns the leader's exit code. Safe to call twice. Raises ServerError if something survives SIGKILL.
        """
        if self.popen is None:
            return None
        self.record_tree()
        if self.popen.poll() is None or self._group_alive():
            self._signal_group(signal.SIGINT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.record_tree()
                self.popen.poll()
                if not self.survivors():
                    break
                time.sleep(0.1)
        if self.survivors():
            self._log_note(f"still running {timeout:.0f}s after SIGINT: {self.survivors()}; sending SIGKILL")
            self._signal_group(signal.SIGKILL)
            for pid in self.survivors():  # descendants that left the group (setsid) are not reached by killpg
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + kill_timeout
            while time.monotonic() < deadline and self.survivors():
                self.popen.poll()
                time.sleep(0.05)
        try:
            self.popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        self.stopped = True
        for companion in self.companions:
            companion.stop(timeout, kill_timeout)
        left = self.survivors()
        if left:
            raise ServerError(f"{self.name}: processes {left} survived SIGKILL")
        return self.popen.returncode

    def _group_alive(self) -> bool:
        if self.pgid is None:
            return False
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # readiness -----------------------------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
        """Poll `predicate` until it returns a truthy value (returned); raise ServerError with the log tail if
        the process exits first or `timeout` s pass. Exceptions raised by the predicate count as "not yet"."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.record_tree()
            if not self.running():
                raise ServerError(
                    f"{self.name} exited with code {self.popen.returncode if self.popen else None} while waiting for "
                    f"{what}\n{self.log_tail()}"
                )
            try:
                value = predicate()
                if value:
                    return value
            except Exception as error:  # noqa: BLE001 - "not ready yet"
                last_error = error
            if time.monotonic() >= deadline:
                detail = f" (last error: {last_error!r})" if last_error else ""
                raise ServerError(f"{self.name}: no {what} after {timeout:.0f}s{detail}\n{self.log_tail()}")
            time.sleep(interval)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        own = f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)
        return "\n".join([own, *(companion.log_tail(lines // 2) for companion in self.companions)])

    def _log_note(self, message: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"[servers.py] {message}\n")

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else f"exited({self.popen.returncode})" if self.popen else "new"
        return f"<ManagedProcess {self.name} pid={self.popen.pid if self.popen else None} {state}>"


def started_processes() -> list[ManagedProcess]:
    with _REGISTRY_LOCK:
        return list(_REGISTRY)


def surviving_processes() -> dict[str, list[int]]:
    """name -> pids still alive, over every process started through this module."""
    result = {}
    for process in started_processes():
        left = process.survivors()
        if left:
            result[f"{process.name}[{process.popen.pid if process.popen else '?'}]"] = left
    return result


def stop_all(timeout: float = 10.0) -> None:
    """Stop every process started through this module (newest first); errors are swallowed, survivors remain
    visible through surviving_processes()."""
    for process in reversed(started_processes()):
        try:
            process.stop(timeout=timeout)
        except Exception:  # noqa: BLE001
            pass


atexit.register(stop_all)


# --- environment ----------------------------------------------------------------------------------------------


def child_env(extra: Mapping[str, str] | None = None, s3_endpoint: str | None = None) -> dict[str, str]:
    """os.environ + dummy AWS credentials + quiet settings (+ S3 endpoint variables) + `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in _AWS_VARIABLES_TO_DROP}
    env.update(DUMMY_AWS_ENV)
    env.update(QUIET_ENV)
    if s3_endpoint:
        env["AWS_ENDPOINT_URL"] = s3_endpoint
        env["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint
    env.update(extra or {})
    return env


# --- servers ------------------------------------------------------------------------------------------------------


def _http_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of GET `url` (4xx/5xx included); raises on connection errors."""
    request = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _start_with_port_retry(
    make: Callable[[int], ManagedProcess], ready: Callable[[ManagedProcess, int], None], attempts: int = 3
) -> tuple[ManagedProcess, int]:
    """Start on a free port; if the process dies at start-up (port taken in the meantime), retry on another."""
    last_error: ServerError | None = None
    for _ in range(attempts):
        port = free_port()
        process = make(port).start()
        try:
            ready(process, port)
            return process, port
        except ServerError as error:
            process.stop(timeout=5)
            if "address already in use" not in process.log_text().lower():
                raise
            last_error = error
    raise last_error  # type: ignore[misc]


def start_moto(
    tmpdir: str | os.PathLike, timeout: float = 30.0, one_request_at_a_time: bool = False
) -> tuple[ManagedProcess, str]:
    """`moto_server -H 127.0.0.1 -p PORT`; returns (process, "http://127.0.0.1:PORT") once it answers HTTP.
    `one_request_at_a_time`: the same server, handling one request at a time (moto_one_request_at_a_time.py)."""
    server = (
        [sys.executable, str(Path(__file__).with_name("moto_one_request_at_a_time.py"))]
        if one_request_at_a_time
        else [binary("moto_server")]
    )

    def make(port: int) -> ManagedProcess:
        return ManagedProcess(
            f"moto-{port}",
            [*server, "-H", "127.0.0.1", "-p", str(port)],
            log_dir=tmpdir,
            env=child_env(),
            cwd=tmpdir,
        )

    def ready(process: ManagedProcess, port: int) -> None:
        process.wait_until(lambda: _http_status(f"http://127.0.0.1:{port}/", timeout=1.0) > 0, timeout, "HTTP answer")

    process, port = _start_with_port_retry(make, ready)
    return process, f"http://127.0.0.1:{port}"


def start_mlflow_server(
    tmpdir: str | os.PathLike,
    s3_endpoint: str,
    artifact_root: str = "s3://mlflow/artifacts",
    timeout: float = 120.0,
) -> tuple[ManagedProcess, str]:
    """An MLflow tracking server on 127.0.0.1 with a sqlite store and artifacts in S3 at `s3_endpoint`.

    `--no-serve-artifacts` + `--default-artifact-root s3://…`: the server hands clients the s3:// location and
    clients read/write artifacts directly, so a client needs MLFLOW_S3_ENDPOINT_URL and AWS credentials too
    (the same layout as production with a real bucket). One uvicorn worker. MLflow's host-header check
    (`--allowed-hosts`) allows localhost/127.0.0.1 on any port by default, so nothing is needed for loopback.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job-runner processes (only used by GenAI features).
    Returns (process, "http://127.0.0.1:PORT") once GET /health answers 200 (~30 s on a 2-core machine).
    """
    tmpdir = Path(tmpdir)
    store = tmpdir / "mlflow.db"

    def make(port: int) -> ManagedProcess:
        return ManagedProcess(
            f"mlflow-{port}",
            [
                binary("mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{store}",
                "--default-artifact-root",
                artifact_root,
                "--no-serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            log_dir=tmpdir,
            # The job executor (huey consumers for GenAI jobs) is not needed for tracking/registry and would add
            # a handful of processes that respawn while the server shuts down.
            env=child_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, s3_endpoint=s3_endpoint),
            cwd=tmpdir,
        )

    def ready(process: ManagedProcess, port: int) -> None:
        process.wait_until(
            lambda: _http_status(f"http://127.0.0.1:{port}/health", timeout=2.0) == 200,
            timeout,
            "200 from GET /health",
            interval=0.5,
        )

    process, port = _start_with_port_retry(make, ready)
    return process, f"http://127.0.0.1:{port}"


def prepare_dagster_home(dagster_home: str | os.PathLike, instance_yaml: str | os.PathLike | None = None) -> Path:
    """Create `dagster_home` with a copy of the repo's dagster.yaml (or `instance_yaml`); returns its path."""
    home = Path(dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    source = Path(instance_yaml) if instance_yaml is not None else REPO_ROOT / "dagster.yaml"
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(source, home / "dagster.yaml")
    return home


def initialize_dagster_instance(dagster_home: str | os.PathLike, env: Mapping[str, str] | None = None) -> None:
    """Create the instance's sqlite storages once, before any daemon or code server opens them.

    On a fresh DAGSTER_HOME the daemon, its code-server subprocess and a liveness check would otherwise all
    create the schema at once and can stamp `alembic_version` twice ("Version table 'alembic_version' has more
    than one head present"), after which no daemon ever heartbeats.
    """
    init_env = dict(env if env is not None else os.environ)
    init_env["DAGSTER_HOME"] = str(dagster_home)
    result = subprocess.run(
        [binary("dagster"), "instance", "migrate"],
        env=init_env,
        cwd=str(REPO_ROOT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise ServerError(f"dagster instance migrate failed in {dagster_home}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def daemon_is_live(dagster_home: str | os.PathLike, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> bool:
    """`dagster-daemon liveness-check`: every daemon the instance requires has written a recent heartbeat."""
    check_env = dict(env if env is not None else os.environ)
    check_env["DAGSTER_HOME"] = str(dagster_home)
    result = subprocess.run(
        [binary("dagster-daemon"), "liveness-check"],
        env=check_env,
        cwd=str(REPO_ROOT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.returncode == 0 and "Daemon live" in result.stdout


def start_code_server(
    env: Mapping[str, str], log_dir: str | os.PathLike, timeout: float = 120.0
) -> tuple[ManagedProcess, Path]:
    """`dagster api grpc` serving the project's code location on a free port (what production's code-location service
    runs), and a workspace file in `log_dir` pointing at it. A daemon given that workspace loads the code once; given
    the repo's workspace.yaml it would start a code server of its own and replace it every minute."""
    port = free_port()
    process = ManagedProcess(
        f"dagster-code-server-{os.getpid()}-{len(started_processes())}",
        [binary("dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(port), "-m", "deploy_assets.definitions",
         "-a", "defs", "--location-name", "deploy_assets", "--log-level", "warning"],
        log_dir=log_dir,
        env=env,
        cwd=REPO_ROOT,
    ).start()
    try:  # the server listens once the code is loaded
        process.wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close() or True,
                           timeout, "code location served")
    except BaseException:
        process.stop(timeout=10)
        raise
    workspace = Path(log_dir) / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
        f"      port: {port}\n      location_name: deploy_assets\n"
    )
    return process, workspace


def start_dagster_daemon(
    dagster_home: str | os.PathLike,
    env: Mapping[str, str] | None = None,
    workspace: str | os.PathLike | None = None,
    timeout: float = 120.0,
    log_dir: str | os.PathLike | None = None,
) -> ManagedProcess:
    """`dagster-daemon run` from the repo root with DAGSTER_HOME=`dagster_home`, against a code server of its own
    (`start_code_server`, stopped with it) unless `workspace` names one.

    `dagster_home` gets a copy of the repo's dagster.yaml unless it already has one. `env` is added to the
    child's environment (on top of os.environ and dummy AWS credentials). Returns once
    `dagster-daemon liveness-check` passes, i.e. every required daemon (scheduler, sensors, run queue,
    backfills, ...) has heartbeated into this instance's storage.
    """
    home = prepare_dagster_home(dagster_home)
    full_env = child_env({**(env or {}), "DAGSTER_HOME": str(home)})
    initialize_dagster_instance(home, full_env)
    code_server = None
    if workspace is None:
        code_server, workspace = start_code_server(full_env, log_dir if log_dir is not None else home, timeout)
    process = ManagedProcess(
        f"dagster-daemon-{os.getpid()}-{len(started_processes())}",
        [binary("dagster-daemon"), "run", "-w", str(workspace)],
        log_dir=log_dir if log_dir is not None else home,
        env=full_env,
        cwd=REPO_ROOT,
    )
    if code_server is not None:
        process.companions.append(code_server)
    process.start()
    try:
        # Cheap signal first (the daemon logs each daemon as it starts), then the authoritative heartbeat check.
        process.wait_until(lambda: "daemon" in process.log_text().lower(), timeout, "daemon start-up log line")
        remaining = max(5.0, timeout - (time.monotonic() - (process.started_at or time.monotonic())))
        process.wait_until(lambda: daemon_is_live(home, full_env), remaining, "daemon heartbeats", interval=1.0)
    except BaseException:
        process.stop(timeout=10)
        raise
    return process


def start_dagster_webserver(env: Mapping[str, str], log_dir: str | os.PathLike) -> tuple[ManagedProcess, int]:
    """`dagster-webserver -w workspace.yaml` from the repo root with `env` (DAGSTER_HOME included) on a free port;
    not waited for (`wait_dagster_webserver`), so it can start while other things do."""
    port = free_port()
    process = ManagedProcess(
        f"dagster-webserver-{port}",
        [binary("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        log_dir=log_dir,
        env=env,
        cwd=REPO_ROOT,
    ).start()
    return process, port


def wait_dagster_webserver(process: ManagedProcess, port: int, timeout: float = 120.0) -> None:
    process.wait_until(
        lambda: _http_status(f"http://127.0.0.1:{port}/server_info") == 200, timeout, "200 from GET /server_info", 0.5
    )
