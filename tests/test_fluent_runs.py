"""The module-level API in one thread: tracking URI, experiments, the run lifecycle, logging."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from asynctrack import MlflowException
from asynctrack.entities import LifecycleStage, Metric
from asynctrack.tracking_uri import DEFAULT_TRACKING_URI
from tests._store_fixtures import scalar, tracking_uri_of_kind


def count(db, sql, *args):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchone()[0]
    finally:
        con.close()


# -- tracking URI ------------------------------------------------------------------------------
def test_tracking_uri_default_env_and_set(monkeypatch, tmp_path):
    from asynctrack import tracking_uri

    monkeypatch.setattr(tracking_uri, "_tracking_uri", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    import asynctrack as mlflow

    assert mlflow.get_tracking_uri() == DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    assert not mlflow.is_tracking_uri_set()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    assert mlflow.get_tracking_uri() == "sqlite:///from-env.db"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/set.db")
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path}/set.db"
    # exported, as MLflow does, so that spawned workers inherit it
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/set.db"
    mlflow.set_tracking_uri(None)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_tracking_uri() == DEFAULT_TRACKING_URI


def test_default_store_is_mlflow_db_in_the_working_directory(tmp_path):
    script = "import asynctrack as m\nwith m.start_run(): m.log_metric('x', 1.0)\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=60)
    assert count(tmp_path / "mlflow.db", "SELECT count(*) FROM metrics") == 1
    assert count(tmp_path / "mlflow.db", "SELECT count(*) FROM runs WHERE status='FINISHED'") == 1


# -- experiments -------------------------------------------------------------------------------
def test_set_experiment_by_name_creates_then_reuses(fluent):
    exp = fluent.set_experiment("exp-a")
    assert exp.name == "exp-a" and exp.lifecycle_stage == "active"
    assert os.environ["MLFLOW_EXPERIMENT_ID"] == exp.experiment_id
    assert fluent.set_experiment("exp-a").experiment_id == exp.experiment_id
    with fluent.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id


def test_set_experiment_by_id_and_its_errors(fluent):
    exp_id = fluent.create_experiment("by-id", tags={"t": "1"})
    assert fluent.set_experiment(experiment_id=exp_id).tags == {"t": "1"}
    with pytest.raises(MlflowException) as e:
        fluent.set_experiment()
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "exactly one of" in e.value.message
    with pytest.raises(MlflowException) as e:
        fluent.set_experiment("x", experiment_id=exp_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        fluent.set_experiment(experiment_id="12345")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    fluent.delete_experiment(exp_id)
    with pytest.raises(MlflowException) as e:
        fluent.set_experiment(experiment_id=exp_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Cannot set a deleted experiment 'by-id' as the active experiment" in e.value.message
    with pytest.raises(MlflowException) as e:
        fluent.set_experiment("by-id")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_experiment_from_environment(fluent, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with fluent.start_run() as run:
        pass
    exp = fluent.get_experiment_by_name("from-env")
    assert run.info.experiment_id == exp.experiment_id
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "999")
    with pytest.raises(MlflowException) as e:
        fluent.start_run()
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "does not match the experiment id" in e.value.message
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    with pytest.raises(MlflowException) as e:
        fluent.start_run()
    assert "`999` does not exist in the tracking server" in e.value.message
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp.experiment_id)
    with fluent.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id


def test_default_experiment_when_nothing_is_set(fluent):
    with fluent.start_run() as run:
        pass
    assert run.info.experiment_id == "0"


def test_experiment_tags_on_the_active_experiment(fluent):
    exp = fluent.set_experiment("tagged")
    fluent.set_experiment_tag("a", 1)
    fluent.set_experiment_tags({"b": "x", "c": 2.5})
    fluent.delete_experiment_tag("a")
    assert fluent.get_experiment(exp.experiment_id).tags == {"b": "x", "c": "2.5"}
    fluent.delete_experiment(exp.experiment_id)
    assert fluent.get_experiment(exp.experiment_id).lifecycle_stage == "deleted"
    fluent.restore_experiment(exp.experiment_id)
    assert fluent.get_experiment_by_name("tagged").lifecycle_stage == "active"


# -- runs --------------------------------------------------------------------------------------
def test_start_run_arguments_and_system_tags(fluent):
    exp_id = fluent.create_experiment("args")
    with fluent.start_run(
        experiment_id=int(exp_id), run_name="my-run", tags={"k": 1}, description="notes"
    ) as run:
        assert fluent.active_run().info.run_id == run.info.run_id
    stored = fluent.get_run(run.info.run_id)
    tags = stored.data.tags
    assert stored.info.experiment_id == exp_id and stored.info.run_name == "my-run"
    assert stored.info.status == "FINISHED" and stored.info.end_time is not None
    assert tags["k"] == "1" and tags["mlflow.note.content"] == "notes"
    assert tags["mlflow.runName"] == "my-run"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == sys.argv[0]
    assert tags["mlflow.user"] == stored.info.user_id != ""
    assert "mlflow.parentRunId" not in tags


def test_generated_run_name(fluent):
    with fluent.start_run() as run:
        pass
    name = fluent.get_run(run.info.run_id).info.run_name
    assert name and name == run.data.tags["mlflow.runName"]
    assert len(name.split("-")) == 3 and name.split("-")[2].isdigit()


def test_start_run_errors(fluent):
    with pytest.raises(MlflowException) as e:
        fluent.start_run(experiment_id=1.5)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        fluent.start_run(experiment_id="424242")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        fluent.start_run(description="d", tags={"mlflow.note.content": "x"})
    assert "Description is already set" in e.value.message
    assert fluent.active_run() is None
    run = fluent.start_run()
    with pytest.raises(MlflowException) as e:
        fluent.start_run()
    assert f"Run with UUID {run.info.run_id} is already active" in e.value.message
    with pytest.raises(MlflowException) as e:
        fluent.start_run(nested=True, parent_run_id="f" * 32)
    assert "does not match the specified parent_run_id" in e.value.message
    assert fluent.active_run().info.run_id == run.info.run_id
    fluent.end_run()


def test_resume_a_run_by_id_and_by_environment(fluent, monkeypatch):
    with fluent.start_run(run_name="first") as run:
        fluent.log_param("p", 1)
    run_id = run.info.run_id
    ended = fluent.get_run(run_id).info.end_time
    with fluent.start_run(run_id=run_id, tags={"again": "yes"}) as resumed:
        assert resumed.info.run_id == run_id
        assert resumed.info.status == "RUNNING" and resumed.info.end_time == ended
        assert resumed.data.params == {"p": "1"} and resumed.data.tags["again"] == "yes"
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    with fluent.start_run() as again:
        assert again.info.run_id == run_id
        assert "MLFLOW_RUN_ID" not in os.environ  # consumed, as MLflow does
    assert fluent.get_run(run_id).info.status == "FINISHED"


def test_resume_errors(fluent):
    with pytest.raises(MlflowException) as e:
        fluent.start_run(run_id="a" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as e:
        fluent.start_run(run_id="not a run id!")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with fluent.start_run() as run:
        pass
    fluent.delete_run(run.info.run_id)
    with pytest.raises(MlflowException, match="because it is in the deleted state"):
        fluent.start_run(run_id=run.info.run_id)
    fluent.set_experiment("elsewhere")
    fluent.restore_run(run.info.run_id)
    with pytest.raises(MlflowException, match="active experiment ID does not match"):
        fluent.start_run(run_id=run.info.run_id)
    assert fluent.active_run() is None


def test_nested_runs_parents_and_get_parent_run(fluent):
    with fluent.start_run() as parent:
        with fluent.start_run(nested=True) as child:
            with fluent.start_run(nested=True) as grandchild:
                assert fluent.active_run().info.run_id == grandchild.info.run_id
            assert fluent.active_run().info.run_id == child.info.run_id
        with fluent.start_run(parent_run_id=parent.info.run_id, nested=True) as explicit:
            pass
    assert fluent.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert fluent.get_parent_run(grandchild.info.run_id).info.run_id == child.info.run_id
    assert fluent.get_parent_run(explicit.info.run_id).info.run_id == parent.info.run_id
    assert fluent.get_parent_run(parent.info.run_id) is None
    # parent_run_id with no active run: a child of that run, in a fresh stack
    with fluent.start_run(parent_run_id=parent.info.run_id) as late:
        pass
    assert late.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_parent_run_deleted_is_refused(fluent):
    with fluent.start_run() as parent:
        pass
    fluent.delete_run(parent.info.run_id)
    with pytest.raises(MlflowException, match="because it is in the deleted state"):
        fluent.start_run(parent_run_id=parent.info.run_id)


@pytest.mark.parametrize(
    "raise_, status",
    [(None, "FINISHED"), (ValueError, "FAILED"), (KeyboardInterrupt, "KILLED")],
)
def test_context_manager_statuses(fluent, raise_, status):
    with pytest.raises(raise_) if raise_ else _nothing():
        with fluent.start_run() as run:
            fluent.log_metric("m", 1.0)
            if raise_:
                raise raise_()
    assert fluent.active_run() is None
    stored = fluent.get_run(run.info.run_id)
    assert stored.info.status == status and stored.data.metrics == {"m": 1.0}


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_end_run_statuses_and_bad_status(fluent):
    run = fluent.start_run()
    with pytest.raises(MlflowException) as e:
        fluent.end_run("DONE")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert fluent.active_run().info.run_id == run.info.run_id  # still active, not orphaned
    fluent.end_run("KILLED")
    assert fluent.get_run(run.info.run_id).info.status == "KILLED"
    fluent.end_run()  # nothing active: a no-op, as in MLflow


def test_active_and_last_active_run(fluent):
    assert fluent.active_run() is None and fluent.last_active_run() is None
    with fluent.start_run() as run:
        assert fluent.last_active_run().info.run_id == run.info.run_id
        fluent.log_metric("m", 2.0)
    last = fluent.last_active_run()
    assert last.info.run_id == run.info.run_id and last.info.status == "FINISHED"
    assert last.data.metrics == {"m": 2.0}


def test_logging_without_an_active_run_starts_one(fluent):
    fluent.log_metric("auto", 1.0)
    run = fluent.active_run()
    assert run is not None
    fluent.end_run()
    assert fluent.get_run(run.info.run_id).data.metrics == {"auto": 1.0}


def test_delete_and_restore_run(fluent):
    with fluent.start_run() as run:
        pass
    fluent.delete_run(run.info.run_id)
    assert fluent.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    fluent.restore_run(run.info.run_id)
    assert fluent.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE


# -- logging -----------------------------------------------------------------------------------
def test_logging_calls_store_exactly_what_was_logged(fluent):
    with fluent.start_run() as run:
        assert fluent.log_param("lr", 0.1) == 0.1
        fluent.log_params({"depth": 3, "name": "rf"})
        fluent.log_metric("loss", 0.5, step=1, timestamp=1000)
        fluent.log_metric("loss", 0.25, step=2, timestamp=2000)
        fluent.log_metric("nan", float("nan"))
        fluent.log_metrics({"a": 1, "b": 2.5}, step=7, timestamp=3000)
        fluent.set_tag("t", 1)
        fluent.set_tags({"u": "x", "v": True})
        fluent.set_tag("gone", "soon")
        fluent.delete_tag("gone")
    stored = fluent.get_run(run.info.run_id)
    assert stored.data.params == {"lr": "0.1", "depth": "3", "name": "rf"}
    assert stored.data.metrics["loss"] == 0.25 and math.isnan(stored.data.metrics["nan"])
    assert stored.data.metrics["a"] == 1.0 and stored.data.metrics["b"] == 2.5
    assert {k: stored.data.tags[k] for k in "tuv"} == {"t": "1", "u": "x", "v": "True"}
    assert "gone" not in stored.data.tags
    client = fluent.MlflowClient()
    assert [(m.value, m.step, m.timestamp) for m in client.get_metric_history(run.info.run_id, "loss")] == [
        (0.5, 1, 1000),
        (0.25, 2, 2000),
    ]
    assert [(m.step, m.timestamp) for m in client.get_metric_history(run.info.run_id, "a")] == [(7, 3000)]


def test_log_metrics_builds_plain_batches_itself_and_the_rest_goes_mlflows_way(fluent, monkeypatch):
    """A mapping of float values with valid names at an int step is encoded as its BATCH record
    straight away; anything else (an int value, a bool step, a bad name, over 1,000 metrics)
    goes through Metric objects and log_batch. Both store the same thing."""
    through_log_batch = []
    real = fluent.MlflowClient.log_batch

    def spy(self, run_id, metrics=(), *args, **kwargs):
        through_log_batch.append([m.key for m in metrics])
        return real(self, run_id, metrics, *args, **kwargs)

    monkeypatch.setattr(fluent.MlflowClient, "log_batch", spy)
    with fluent.start_run() as run:
        fluent.log_metrics({"a": 1.0, "b": float("nan")}, step=1, timestamp=10)
        fluent.log_metrics({"a": 2.0}, step=2, timestamp=20, synchronous=False).wait()
        assert through_log_batch == []
        fluent.log_metrics({"a": 3, "b": 4.0}, step=3, timestamp=30)  # an int value
        fluent.log_metrics({"a": 5.0}, step=True, timestamp=40)  # a bool step
        with pytest.raises(MlflowException):
            fluent.log_metrics({"bad key!": 6.0}, step=5, timestamp=50)
        fluent.log_metrics({f"k{i}": 7.0 for i in range(1001)}, step=6, timestamp=60)
        assert [len(keys) for keys in through_log_batch] == [2, 1, 1, 1001]
    history = fluent.MlflowClient().get_metric_history(run.info.run_id, "a")
    assert [(m.value, m.step, m.timestamp) for m in history] == [
        (1.0, 1, 10), (2.0, 2, 20), (3.0, 3, 30), (5.0, 1, 40)
    ]
    assert fluent.get_run(run.info.run_id).data.metrics["b"] == 4.0  # step 3's, over step 1's NaN
    assert len(fluent.get_run(run.info.run_id).data.metrics) == 2 + 1001


def test_log_metric_to_a_named_run(fluent):
    with fluent.start_run() as other:
        pass
    with fluent.start_run():
        fluent.log_metric("x", 3.0, run_id=other.info.run_id)
        fluent.log_metrics({"y": 4.0}, run_id=other.info.run_id)
        fluent.log_params({"p": 1}, run_id=other.info.run_id)
    data = fluent.get_run(other.info.run_id).data
    assert data.metrics == {"x": 3.0, "y": 4.0} and data.params == {"p": "1"}
    with pytest.raises(MlflowException) as e:
        fluent.log_metric("x", 1.0, run_id="b" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_asynchronous_logging_and_run_operations(fluent):
    with fluent.start_run() as run:
        ops = [fluent.log_metric("m", float(i), step=i, synchronous=False) for i in range(1000)]
        assert all(isinstance(o, fluent.RunOperations) for o in ops)
        ops[-1].wait()
        fluent.log_param("p", 1, synchronous=False).wait()
        fluent.set_tag("t", "v", synchronous=False)
        fluent.log_metrics({"a": 1.0, "b": 2.0}, synchronous=False)
        bad = fluent.log_metric("bad key!", 1.0, synchronous=False)
        # As MLflow: wait() wraps the failures of asynchronous operations in INTERNAL_ERROR
        with pytest.raises(MlflowException) as e:
            bad.wait()
        assert e.value.error_code == "INTERNAL_ERROR"
        assert "bad key!" in e.value.message and "metrics[0].name" in e.value.message
        conflict = fluent.log_param("p", 2, synchronous=False)
        with pytest.raises(MlflowException) as e:
            conflict.wait()
        assert e.value.error_code == "INTERNAL_ERROR"
        assert "Changing param values is not allowed" in e.value.message
        for i in range(1000, 2000):
            fluent.log_metric("m", float(i), step=i, synchronous=False)
    # end_run returned: everything logged to the run is stored
    client = fluent.MlflowClient()
    assert len(client.get_metric_history(run.info.run_id, "m")) == 2000
    data = fluent.get_run(run.info.run_id).data
    assert data.params == {"p": "1"} and data.tags["t"] == "v" and data.metrics["b"] == 2.0


def test_async_logging_by_environment_variable(fluent, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "true")
    with fluent.start_run():
        assert isinstance(fluent.log_metric("m", 1.0), fluent.RunOperations)
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    with fluent.start_run():
        assert fluent.log_metric("m", 1.0) is None


def test_flush_async_logging_stores_everything_queued(fluent):
    run = fluent.start_run()
    for i in range(5000):
        fluent.log_metric("m", float(i), step=i, synchronous=False)
    fluent.flush_async_logging()
    assert scalar(fluent.get_tracking_uri(), "SELECT count(*) FROM metrics WHERE run_uuid = ?", run.info.run_id) == 5000
    fluent.end_run()


def test_logging_errors_are_mlflows(fluent):
    with fluent.start_run() as run:
        with pytest.raises(MlflowException) as e:
            fluent.log_metric("", 1.0)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(MlflowException) as e:
            fluent.log_metric("m", "not a number")
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        fluent.log_param("p", "a")
        with pytest.raises(MlflowException) as e:
            fluent.log_param("p", "b")
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(MlflowException) as e:
            fluent.set_tag("", "x")
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
        fluent.set_tag("long", "x" * 8001)  # MLflow truncates long tag values, with a warning
    data = fluent.get_run(run.info.run_id).data
    assert data.params == {"p": "a"} and data.metrics == {}
    assert data.tags["long"] == "x" * 8000


def test_logging_to_a_deleted_run_is_refused(fluent):
    run = fluent.start_run()
    fluent.delete_run(run.info.run_id)
    with pytest.raises(MlflowException) as e:
        fluent.log_metric("m", 1.0)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    fluent.restore_run(run.info.run_id)
    fluent.end_run()


def test_models_and_datasets_are_refused_clearly(fluent):
    with fluent.start_run():
        with pytest.raises(MlflowException, match="not supported by asynctrack yet"):
            fluent.log_metric("m", 1.0, model_id="m-123")


# -- system tags from git ----------------------------------------------------------------------
def test_git_tags_of_the_main_file(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=a@b.c", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://user:tok@example.com/x.git"], cwd=repo, check=True)
    (repo / "train.py").write_text(textwrap.dedent("""
        import asynctrack as mlflow
        with mlflow.start_run() as run:
            pass
        print(run.info.run_id)
    """))
    subprocess.run([*git, "add", "train.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run([sys.executable, "train.py"], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    from asynctrack import MlflowClient

    tags = MlflowClient(f"sqlite:///{repo}/mlflow.db").get_run(run_id).data.tags
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://example.com/x.git"
    assert tags["mlflow.source.name"] == "train.py"


# -- interpreter exit ----------------------------------------------------------------------------
def test_runs_still_active_at_exit_are_ended_and_their_data_stored(store_kind, tmp_path, request):
    script = textwrap.dedent("""
        import threading
        import asynctrack as mlflow
        parent = mlflow.start_run(run_name="parent")
        child = mlflow.start_run(run_name="child", nested=True)
        for i in range(20000):
            mlflow.log_metric("m", float(i), step=i, synchronous=False)
        def worker():
            mlflow.start_run(run_name="thread-run")
            for i in range(3000):
                mlflow.log_metric("t", float(i), step=i, synchronous=False)
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    """)
    uri = tracking_uri_of_kind(store_kind, tmp_path, request)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = uri
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    finished = "SELECT count(*) FROM runs WHERE name = ? AND status = 'FINISHED'"
    assert [scalar(uri, finished, name) for name in ("parent", "child", "thread-run")] == [1, 1, 1]
    assert scalar(uri, "SELECT count(*) FROM runs") == 3
    assert scalar(uri, "SELECT count(*) FROM metrics WHERE key='m'") == 20000
    assert scalar(uri, "SELECT count(*) FROM metrics WHERE key='t'") == 3000
    assert scalar(uri, "SELECT count(*) FROM runs WHERE end_time IS NULL") == 0
    if store_kind == "sqlite":
        assert scalar(uri, "PRAGMA integrity_check") == "ok"
