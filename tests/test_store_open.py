"""Opening a store: a read-only one (file, directory, or both; a read-only mount or an archive)
is read and refuses writes with a clear ``MlflowException``; every way a store can fail to open
(missing directory, not a database, a newer schema, a lock held forever, a full disk, a
directory that takes no new file) is an ``MlflowException`` with a code and a message a user can
act on, never a raw sqlite3 or OS error.

Read-only is made the real way: ``chmod`` and, since these tests run as root and root ignores
the mode bits, ``chattr +i`` (undone in teardown so pytest can remove the files). Where neither
makes a file unwritable, those tests skip with one line.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import asynctrack as mlflow
from asynctrack import MlflowClient, tracking_uri
from asynctrack.exceptions import MlflowException
from asynctrack.store._sqlite import connection
from asynctrack.writer import _outage as outage_module

from tests.oracle import error_of, needs_mlflow, oracle_python, run  # noqa: F401 (skipif evaluates oracle_python)

MAKE = textwrap.dedent("""
    import json, sys
    from {module} import MlflowClient
    c = MlflowClient("sqlite:///" + sys.argv[1])
    exp = c.create_experiment("e")
    run = c.create_run(exp, run_name="r")
    run_id = run.info.run_id
    c.log_param(run_id, "p", "v")
    c.set_tag(run_id, "t", "x")
    for step in range(3):
        c.log_metric(run_id, "m", float(step), step=step, timestamp=1000 + step)
    print("@@" + json.dumps({{"experiment_id": exp, "run_id": run_id}}))
""")


def _make_db(python: str, module: str, path: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.run([python, "-c", MAKE.format(module=module), path], capture_output=True,
                          text=True, timeout=300, env=env, cwd=os.path.dirname(path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.rsplit("@@", 1)[1])


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Databases as each writer leaves them, closed: asynctrack's (WAL) and, where the oracle
    is installed, MLflow's (rollback journal)."""
    out = {}
    root = tmp_path_factory.mktemp("templates")
    path = str(root / "asynctrack.db")
    out["asynctrack"] = (path, _make_db(sys.executable, "asynctrack", path))
    if oracle_python() is not None:
        path = str(root / "mlflow.db")
        out["mlflow"] = (path, _make_db(oracle_python(), "mlflow", path))
    for path, _ in out.values():
        assert not os.path.exists(path + "-wal")  # each closed its file cleanly
    return out


def _copy(templates, writer, directory) -> tuple[str, dict]:
    if writer not in templates:
        pytest.skip("MLflow oracle not installed")
    src, ids = templates[writer]
    os.makedirs(directory, exist_ok=True)
    dst = os.path.join(directory, "mlflow.db")
    shutil.copyfile(src, dst)
    return dst, ids


def _writable(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_RDWR if os.path.isfile(path) else os.O_RDONLY))
    except OSError:
        return False
    return os.path.isfile(path) or os.access(path, os.W_OK)


@pytest.fixture
def freeze():
    """``freeze(*paths)``: make files 0444 and directories 0555, and immutable (chattr +i) where
    that is what it takes; undone at teardown, innermost first."""
    frozen: list[str] = []

    def _freeze(*paths) -> None:
        for path in map(str, paths):
            os.chmod(path, 0o444 if os.path.isfile(path) else 0o555)
            frozen.append(path)
            if not _writable(path):
                continue  # not root: the mode bits are enough
            proc = subprocess.run(["chattr", "+i", path], capture_output=True, text=True)
            if proc.returncode != 0 or _writable(path):
                pytest.skip(f"neither chmod nor chattr +i makes {path} unwritable here: "
                            f"{(proc.stderr or 'still writable').strip()}")

    yield _freeze
    for path in reversed(frozen):
        subprocess.run(["chattr", "-i", path], capture_output=True)
        os.chmod(path, 0o644 if os.path.isfile(path) else 0o755)


def _expect(fn, code: str, *words: str) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        fn()
    assert info.value.error_code == code, info.value.message
    for word in words:
        assert word in info.value.message, info.value.message
    assert not isinstance(info.value, sqlite3.Error)
    return info.value


def _assert_reads(client: MlflowClient, ids: dict) -> None:
    run = client.get_run(ids["run_id"])
    assert run.data.params == {"p": "v"}
    assert run.data.tags["t"] == "x"
    assert run.data.metrics == {"m": 2.0}
    assert client.get_experiment(ids["experiment_id"]).name == "e"
    assert client.get_experiment_by_name("e").experiment_id == ids["experiment_id"]
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "e"]
    assert [r.info.run_id for r in client.search_runs([ids["experiment_id"]], "params.p = 'v'")] == [ids["run_id"]]
    assert [(m.step, m.value) for m in client.get_metric_history(ids["run_id"], "m")] == [
        (0, 0.0), (1, 1.0), (2, 2.0)
    ]
    with pytest.MonkeyPatch.context() as patch:  # the fluent API's URI, put back after
        patch.setattr(tracking_uri, "_tracking_uri", client.tracking_uri)
        found = mlflow.search_runs([ids["experiment_id"]], output_format="list")
    assert [r.info.run_id for r in found] == [ids["run_id"]]


def _assert_writes_refused(client: MlflowClient, ids: dict, path: str) -> None:
    run_id = ids["run_id"]
    for write in (
        lambda: client.create_experiment("new"),
        lambda: client.create_run(ids["experiment_id"]),
        lambda: client.log_param(run_id, "q", "v"),
        lambda: client.log_metric(run_id, "q", 1.0),
        lambda: client.set_tag(run_id, "q", "v"),
        lambda: client.set_terminated(run_id),
    ):
        start = time.monotonic()
        _expect(write, "TEMPORARILY_UNAVAILABLE", f"{path} is read-only", "Nothing of this call was stored")
        assert time.monotonic() - start < 1.5  # told at once, not after the brief retries


# -- read-only stores ------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["asynctrack", "mlflow"])
@pytest.mark.parametrize("where", ["file and directory", "file"])
def test_a_read_only_store_is_read_and_refuses_writes(tmp_path, templates, freeze, writer, where):
    """A closed database, made read-only (file alone, or file and directory): the client opens
    it, every read works, every synchronous write raises TEMPORARILY_UNAVAILABLE saying the
    store is read-only, and the file is left byte for byte as it was."""
    path, ids = _copy(templates, writer, tmp_path / "db")
    before = open(path, "rb").read()
    freeze(path, *([tmp_path / "db"] if where == "file and directory" else []))
    client = MlflowClient(f"sqlite:///{path}")
    _assert_reads(client, ids)
    _assert_writes_refused(client, ids, path)
    _assert_reads(client, ids)
    assert open(path, "rb").read() == before
    if where == "file and directory":
        assert os.listdir(tmp_path / "db") == ["mlflow.db"]


@needs_mlflow
@pytest.mark.parametrize("writer", ["asynctrack", "mlflow"])
def test_read_only_store_against_mlflow(tmp_path, templates, freeze, writer):
    """MLflow 3.18 on the same read-only file and directory. Its own file (rollback journal):
    it reads, and a write raises TEMPORARILY_UNAVAILABLE as here (its message is SQLAlchemy's
    "attempt to write a readonly database"; asynctrack's names the file and says read-only).
    asynctrack's file (WAL): MLflow cannot even open it (a raw "unable to open database file",
    SQLite having no -shm to read the WAL with) where asynctrack reads it immutable. Divergence
    kept on purpose: the file is readable, and asynctrack reads it."""
    path, ids = _copy(templates, writer, tmp_path / "db")
    freeze(path, tmp_path / "db")
    theirs = run("""
        from mlflow import MlflowClient
        try:
            c = MlflowClient("sqlite:///" + ARGS["path"])
            names = sorted(e.name for e in c.search_experiments())
        except Exception as e:
            _out({"open": type(e).__name__ + ": " + str(e).splitlines()[0]})
            raise SystemExit
        try:
            c.create_experiment("new")
            err = None
        except Exception as e:
            err = _err(e)
        _out({"names": names, "write": err})
    """, path=path)
    ours = MlflowClient(f"sqlite:///{path}")
    assert sorted(e.name for e in ours.search_experiments()) == ["Default", "e"]
    mine = error_of(ours.create_experiment, "new")
    if writer == "mlflow":
        assert theirs["names"] == ["Default", "e"]
        assert theirs["write"]["error_code"] == mine["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "attempt to write a readonly database" in theirs["write"]["message"]
        assert "is read-only" in mine["message"]
    else:
        assert theirs == {"open": "OperationalError: (sqlite3.OperationalError) unable to open database file"}


WAL_PENDING = textwrap.dedent("""
    import os, shutil, sqlite3, sys
    src, dst, keep_shm = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    con = sqlite3.connect(src, isolation_level=None)
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("UPDATE experiments SET name = 'renamed' WHERE name = 'e'")
    # What a process killed now leaves: the file, its -wal with the commit, its -shm.
    for suffix in ("", "-wal") + (("-shm",) if keep_shm else ()):
        shutil.copyfile(src + suffix, dst + suffix)
    os._exit(0)
""")


@pytest.mark.parametrize("keep_shm", [True, False], ids=["with -shm", "without -shm"])
def test_a_wal_with_commits_in_a_read_only_directory(tmp_path, templates, freeze, keep_shm):
    """A process ended with a commit still in the -wal, and the directory is then made
    read-only. With the -shm beside it, SQLite reads the WAL (mode=ro): the commit is seen.
    Without one, only immutable=1 could open the file, and it would read the file without the
    commit: refused, PERMISSION_DENIED, saying what to do, rather than read stale."""
    src, ids = _copy(templates, "asynctrack", tmp_path / "work")
    dst = str(tmp_path / "db" / "mlflow.db")
    os.makedirs(tmp_path / "db")
    subprocess.run([sys.executable, "-c", WAL_PENDING, src, dst, "1" if keep_shm else "0"], check=True)
    assert os.path.getsize(dst + "-wal") > 0
    files = sorted(glob.glob(dst + "*"))
    freeze(*files, tmp_path / "db")
    if keep_shm:
        client = MlflowClient(f"sqlite:///{dst}")
        assert client.get_experiment(ids["experiment_id"]).name == "renamed"
        _expect(lambda: client.set_tag(ids["run_id"], "q", "v"), "TEMPORARILY_UNAVAILABLE", "is read-only")
    else:
        _expect(lambda: MlflowClient(f"sqlite:///{dst}"), "PERMISSION_DENIED",
                f"Cannot read {dst}: it is read-only", f"{dst}-wal may hold transactions",
                "Open the database once where it can be written")
    assert sorted(glob.glob(dst + "*")) == files


def test_a_file_sqlite_only_reads_is_read(tmp_path, templates):
    """The portable way to a read-only file, where the kernel would let it be written: its
    header's write version (byte 18) above 2, a format SQLite reads but never writes. Reads work
    and a write says read-only, at once."""
    path, ids = _copy(templates, "asynctrack", tmp_path)
    with open(path, "r+b") as f:
        f.seek(18)
        f.write(bytes([3]))
    client = MlflowClient(f"sqlite:///{path}")
    _assert_reads(client, ids)
    _assert_writes_refused(client, ids, path)
    _expect(lambda: client.log_param(ids["run_id"], "q", "v"), "TEMPORARILY_UNAVAILABLE",
            f"{path} is read-only: SQLite only reads its file format (write version 3)")


ASYNC_ON_READ_ONLY = textwrap.dedent("""
    import sys
    import asynctrack as mlflow
    from asynctrack import MlflowClient
    client = MlflowClient("sqlite:///" + sys.argv[1])
    run_id = sys.argv[2]
    for i in range(100):
        client.log_metric(run_id, "async", float(i), step=i, synchronous=False)
    client.log_param(run_id, "late", "yes", synchronous=False)
    print(len(client.get_metric_history(run_id, "m")), "logged", flush=True)
""")


def test_async_logging_to_a_read_only_store_is_spooled_and_replayable(tmp_path, templates, freeze):
    """synchronous=False on a read-only store: no exception, reads still work, and at exit the
    records go to a spool (named in one log line) that stores them once the file is writable."""
    path, ids = _copy(templates, "asynctrack", tmp_path / "db")
    freeze(path, tmp_path / "db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ASYNCTRACK_"))}
    env.update(ASYNCTRACK_SPOOL_DIR=str(tmp_path / "spool"), ASYNCTRACK_EXIT_TIMEOUT="1")
    proc = subprocess.run([sys.executable, "-c", ASYNC_ON_READ_ONLY, path, ids["run_id"]],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3", "logged"]
    assert "Traceback" not in proc.stderr and "is read-only" in proc.stderr
    spools = glob.glob(str(tmp_path / "spool" / "*.msgpack"))
    assert len(spools) == 1 and "asynctrack replay" in proc.stderr

    subprocess.run(["chattr", "-i", path, str(tmp_path / "db")], capture_output=True)
    os.chmod(tmp_path / "db", 0o755)
    os.chmod(path, 0o644)
    from asynctrack._replay import replay_spool

    report = replay_spool(spools[0])
    assert (report.read, report.stored, report.failed) == (101, 101, [])
    client = MlflowClient(f"sqlite:///{path}")
    assert len(client.get_metric_history(ids["run_id"], "async")) == 100
    assert client.get_run(ids["run_id"]).data.params["late"] == "yes"


def test_a_store_made_writable_again_takes_the_records_it_kept(tmp_path, templates, freeze, monkeypatch):
    """Read-only at open (read immutable), then writable again (a remount): the asynchronous
    records kept meanwhile are stored, and reads in this process see them (its readers no
    longer trust the file to be immutable)."""
    monkeypatch.setattr(outage_module, "RETRY_MAX_DELAY_S", 0.2)
    path, ids = _copy(templates, "asynctrack", tmp_path / "db")
    freeze(path, tmp_path / "db")
    client = MlflowClient(f"sqlite:///{path}")
    run_id = ids["run_id"]
    for i in range(10):
        client.log_metric(run_id, "kept", float(i), step=i, synchronous=False)
    assert client.get_metric_history(run_id, "kept") == []
    subprocess.run(["chattr", "-i", path, str(tmp_path / "db")], capture_output=True)
    os.chmod(tmp_path / "db", 0o755)
    os.chmod(path, 0o644)
    deadline = time.monotonic() + 30
    while not client.get_metric_history(run_id, "kept") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m.value for m in client.get_metric_history(run_id, "kept")] == [float(i) for i in range(10)]
    client.set_tag(run_id, "after", "yes")  # and synchronous writes work again
    assert client.get_run(run_id).data.tags["after"] == "yes"


# -- stores that cannot be opened -------------------------------------------------------------


def test_a_missing_directory_is_created_as_mlflow_does(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/a/b/mlflow.db")
    assert [e.name for e in client.search_experiments()] == ["Default"]


def test_a_missing_directory_that_cannot_be_created(tmp_path, freeze):
    (tmp_path / "ro").mkdir()
    freeze(tmp_path / "ro")
    target = tmp_path / "ro" / "sub" / "mlflow.db"
    _expect(lambda: MlflowClient(f"sqlite:///{target}"), "PERMISSION_DENIED",
            f"Cannot create the directory {target.parent} for the tracking database")
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "mlflow.db"
    _expect(lambda: MlflowClient(f"sqlite:///{target}"), "INVALID_PARAMETER_VALUE",
            f"Cannot create the directory {target.parent} for the tracking database", "File exists")


def test_a_new_database_in_a_read_only_directory(tmp_path, freeze):
    (tmp_path / "ro").mkdir()
    freeze(tmp_path / "ro")
    target = tmp_path / "ro" / "mlflow.db"
    _expect(lambda: MlflowClient(f"sqlite:///{target}"), "PERMISSION_DENIED",
            f"Cannot create the tracking database {target}: its directory", "cannot be written")
    assert not target.exists()


def test_a_file_that_is_not_a_database(tmp_path):
    target = tmp_path / "mlflow.db"
    target.write_bytes(b"this is a text file, not SQLite\n" * 100)
    _expect(lambda: MlflowClient(f"sqlite:///{target}"), "INVALID_PARAMETER_VALUE",
            f"Cannot open {target}: it is not an SQLite database (file is not a database)")
    assert target.read_bytes() == b"this is a text file, not SQLite\n" * 100


@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
def test_a_database_from_a_newer_mlflow(tmp_path, templates, freeze, read_only):
    """An alembic revision MLflow 3.18 does not know: refused with MLflow's message and code
    (INTERNAL_ERROR), plus what to do when the file comes from a newer MLflow."""
    path, _ = _copy(templates, "asynctrack", tmp_path / "db")
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    con.commit()
    con.close()
    if read_only:
        freeze(path, tmp_path / "db")
    _expect(lambda: MlflowClient(f"sqlite:///{path}"), "INTERNAL_ERROR",
            "Detected out-of-date database schema (found version ffffffffffff, but expected "
            "f4a9b2c7d1e6).", "if it comes from a newer MLflow, asynctrack cannot use it")


@needs_mlflow
def test_a_database_from_a_newer_mlflow_against_mlflow(tmp_path, templates):
    path, _ = _copy(templates, "asynctrack", tmp_path)
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    con.commit()
    con.close()
    theirs = run("""
        from mlflow import MlflowClient
        try:
            MlflowClient("sqlite:///" + ARGS["path"]).search_experiments()
            _out(None)
        except Exception as e:
            _out(_err(e))
    """, path=path)
    mine = error_of(MlflowClient, f"sqlite:///{path}")
    assert mine["error_code"] == theirs["error_code"] == "INTERNAL_ERROR"
    prefix = "Detected out-of-date database schema (found version ffffffffffff, but expected f4a9b2c7d1e6)."
    assert mine["message"].startswith(prefix) and theirs["message"].startswith(prefix)


@pytest.mark.parametrize("how", ["BEGIN EXCLUSIVE", "locking_mode=EXCLUSIVE"])
@pytest.mark.parametrize("writer", ["asynctrack", "mlflow"])
def test_a_lock_held_forever(tmp_path, templates, monkeypatch, how, writer):
    """Another connection holds the file locked and never lets go: the open gives up after the
    retry deadline with TEMPORARILY_UNAVAILABLE, naming the file and the lock."""
    monkeypatch.setattr(connection, "RETRY_DEADLINE_S", 1.0)
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.2)
    path, _ = _copy(templates, writer, tmp_path)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        if how == "BEGIN EXCLUSIVE":
            locker.execute("BEGIN EXCLUSIVE")
        else:
            locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("UPDATE experiments SET last_update_time = last_update_time")
        if how != "BEGIN EXCLUSIVE" and locker.in_transaction:
            locker.execute("COMMIT")  # exclusive locking mode keeps the lock after it
        start = time.monotonic()
        if writer == "asynctrack" and how == "BEGIN EXCLUSIVE":
            # WAL: readers go on beside a writer; the store opens and reads.
            assert [e.name for e in MlflowClient(f"sqlite:///{path}").search_experiments()]
        else:
            _expect(lambda: MlflowClient(f"sqlite:///{path}"), "TEMPORARILY_UNAVAILABLE",
                    f"Cannot open {path}: The SQLite database stayed locked for 1 s (database is locked)",
                    "holds a write transaction or an exclusive lock on it")
        assert time.monotonic() - start < 10
    finally:
        locker.close()


@pytest.fixture
def tiny_disk(tmp_path):
    """``tiny_disk(size)``: a tmpfs of ``size`` mounted in tmp_path, unmounted at teardown."""
    mounted = []

    def mount(size: str):
        disk = tmp_path / f"disk-{size}"
        disk.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here to fill: {proc.stderr.strip()}")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk) -> None:
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    assert os.statvfs(disk).f_bfree == 0


def test_a_full_disk_at_open(tmp_path, templates, tiny_disk):
    """A new database on a full disk, and an existing one (WAL, which needs room for its -shm
    even to be read): RESOURCE_EXHAUSTED, saying the disk is full."""
    disk = tiny_disk("4m")
    existing, _ = _copy(templates, "asynctrack", disk)
    _fill(disk)
    new = disk / "new.db"
    _expect(lambda: MlflowClient(f"sqlite:///{new}"), "RESOURCE_EXHAUSTED",
            f"Cannot open {new}: the disk is full", "Free some space")
    _expect(lambda: MlflowClient(f"sqlite:///{existing}"), "RESOURCE_EXHAUSTED",
            f"Cannot open {existing}: the disk is full")


def test_a_disk_that_fills_while_the_schema_is_written(tiny_disk):
    """Room for the file, not for MLflow's 71 tables: RESOURCE_EXHAUSTED (not the "cannot
    rollback" of a ROLLBACK after SQLite's own), and the file is left empty, as it was."""
    target = tiny_disk("64k") / "mlflow.db"
    _expect(lambda: MlflowClient(f"sqlite:///{target}"), "RESOURCE_EXHAUSTED",
            f"Cannot open {target}: the disk is full (database or disk is full)")
    assert target.stat().st_size == 0
