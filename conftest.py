import os
import tempfile
from pathlib import Path

# Real-server fixtures (moto S3, MLflow server, dagster-daemon) for every test module.
pytest_plugins = ["deploy_assets_tests.fixtures_servers", "deploy_assets_tests.postgres_server"]


def pytest_configure(config):
    """The fast tier (`-m "not servers"`) keeps its temporary files (tmp_path, Dagster test instances, MLflow stores)
    in RAM when the machine has a writable /dev/shm with 2 GB free and TMPDIR is not set: in process, every Dagster
    event is a SQLite commit, and on a disk each one waits for fsync (a fifth of the tier's time on the 2-core
    machine). The files and what the tests check are the same. Runs that include server tests keep the default
    temporary folder. Set TMPDIR to choose the folder yourself."""
    if hasattr(config, "workerinput") or "TMPDIR" in os.environ:
        return  # an xdist worker inherits the controller's TMPDIR
    if " ".join(config.option.markexpr.split()) != "not servers":
        return
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)):
        return
    free = os.statvfs(shm)
    if free.f_bavail * free.f_frsize < 2 * 1024**3:  # a container's 64 MB /dev/shm: the tier writes a few hundred MB
        return
    folder = shm / f"deploy-assets-tests-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # tempfile.gettempdir() reads TMPDIR again


# The longest modules of the servers tier (each several minutes of real daemons), first in the collection: with
# `--dist loadfile` a worker takes a module at a time in this order, so the suite does not end waiting on one of
# them started last while the other workers sit idle.
LONGEST_MODULES = (  # by their time in a CI run, longest first
    "test_ui_runs_daemon.py",
    "test_automation_champion.py",
    "test_daemon_s3_bulk.py",
    "test_automation_order.py",
    "test_notifications_daemon.py",
    "test_faults.py",
    "test_terraform_apply.py",
    "test_daemon_end_to_end.py",
    "test_backfills_daemon.py",
    "test_automation_daemon.py",
    "test_deployments_daemon.py",
    "test_write_audit_publish.py",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: index for index, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every other module keeps its order
