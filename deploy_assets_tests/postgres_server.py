"""A real PostgreSQL server for tests: initdb into a temporary directory, one `postgres` process on loopback.

- Binaries: the newest /usr/lib/postgresql/*/bin (Debian's `postgresql` package; `scripts/bootstrap.sh --dev`
  installs it), else `initdb`/`postgres` on PATH.
- PostgreSQL refuses to run as root: as root, both initdb and the server run as the `postgres` system user
  through `setpriv`, which changes uid/gid and execs in place (no forking wrapper, unlike su/runuser), so the
  server stays the leader of the process group `servers.ManagedProcess` signals. The data directory is then a
  fresh directory under the system temp dir owned by that user (pytest's own temp dirs are root-only).
- Like production RDS, the server accepts TCP on 127.0.0.1 only, with TLS only (`hostssl` + a self-signed
  certificate: libpq's `sslmode=require` encrypts without verifying) and a password (scram-sha-256); no
  Unix socket. Durability is off (fsync, full_page_writes, synchronous_commit): a test server is thrown away.
- Stopped with SIGINT to its group (PostgreSQL's "fast shutdown"); the data directory is then removed.

`postgres_url` (session fixture) yields the URL of a database created for the session; `fresh_database()`
creates another one on the same server for a test that needs an empty database.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from deploy_assets_tests import servers

SUPERUSER = "postgres"
SERVICE_USER = "postgres"  # the system account the server runs as when tests run as root
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "ssl": "on",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_connections": "100",
}
HBA = "# TYPE  DATABASE USER ADDRESS       METHOD\nhostssl all      all  127.0.0.1/32  scram-sha-256\n"


def find_bindir() -> Path:
    """The directory holding initdb and postgres (newest Debian version first)."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        if all(os.access(Path(candidate) / name, os.X_OK) for name in ("initdb", "postgres")):
            return Path(candidate)
    raise servers.ServerError(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin or initdb on PATH): "
        "run `bash scripts/bootstrap.sh --dev` (installs Debian's postgresql package)"
    )


def _as_service_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that drops root to SERVICE_USER (none when not root), and that user."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError as error:
        raise servers.ServerError(
            f"running as root and there is no {SERVICE_USER!r} user to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from error
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise servers.ServerError("setpriv (util-linux) not found: needed to run PostgreSQL as a non-root user")
    # --pdeathsig: the uid change clears the SIGINT-on-parent-death ManagedProcess sets; set it again.
    command = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--pdeathsig=INT", "--"]
    return command, user


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise servers.ServerError("openssl not found: needed for the test server's TLS certificate")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [openssl, "req", "-new", "-x509", "-nodes", "-days", "2", "-newkey", "rsa:2048", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def connect(url: str, **kwargs):
    import psycopg2

    return psycopg2.connect(url, connect_timeout=5, **kwargs)


def fresh_database(url: str, prefix: str = "test") -> str:
    """Create an empty database on the server at `url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    connection = connect(url)
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return with_database(url, name)


class PostgresServer:
    """initdb + one `postgres` process; `start()` returns once a TLS connection with the password succeeds."""

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = Path(log_dir)
        self.bindir = find_bindir()
        self.prefix, self.user = _as_service_user()
        self.password = secrets.token_urlsafe(16)
        self.root: Path | None = None
        self.process: servers.ManagedProcess | None = None
        self.port: int | None = None
        self.options: dict[str, str] = {}

    @property
    def url(self) -> str:
        """The superuser's URL for the `postgres` database."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres?sslmode=require"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix="deploy-assets-postgres-"))
        try:
            self._init_cluster()
            self.process, self.port = servers._start_with_port_retry(self._make, self._wait_ready)
        except BaseException:
            self.stop()
            raise
        return self

    def _init_cluster(self) -> None:
        assert self.root is not None
        data = self.root / "data"
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        cert, key = _self_signed_certificate(self.root)
        if self.user is not None:
            for path in (self.root, password_file, cert, key):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        result = subprocess.run(
            [*self.prefix, str(self.bindir / "initdb"), "-D", str(data), "-U", SUPERUSER,
             f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, timeout=120, cwd=self.root,
        )  # fmt: skip
        password_file.unlink()
        if result.returncode != 0:
            raise servers.ServerError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        (data / "pg_hba.conf").write_text(HBA)
        self.options = {**SERVER_OPTIONS, "ssl_cert_file": str(cert), "ssl_key_file": str(key)}

    def _make(self, port: int) -> servers.ManagedProcess:
        assert self.root is not None
        options = [item for name, value in self.options.items() for item in ("-c", f"{name}={value}")]
        return servers.ManagedProcess(
            f"postgres-{port}",
            [*self.prefix, str(self.bindir / "postgres"), "-D", str(self.root / "data"), "-p", str(port), *options],
            log_dir=self.log_dir,
            env={"LANG": "C", "LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=self.root,
        )

    def _wait_ready(self, process: servers.ManagedProcess, port: int) -> None:
        self.port = port

        def accepts_connections() -> bool:
            connection = connect(self.url)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    return cursor.fetchone()[0] is True
            finally:
                connection.close()

        process.wait_until(accepts_connections, 60.0, "TLS connection with the password")

    def stop(self) -> None:
        try:
            if self.process is not None:
                code = self.process.stop(timeout=20)
                if code not in (0, None):
                    raise servers.ServerError(f"postgres exited with {code} on shutdown\n{self.process.log_tail()}")
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> Iterator[str]:
    """A database on a PostgreSQL server started for the session (TLS + password, loopback); yields its URL."""
    try:
        server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    except servers.ServerError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield fresh_database(server.url, "deploy_assets")
    finally:
        server.stop()
