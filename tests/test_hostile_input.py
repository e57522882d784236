"""Input crafted to inject SQL or escape the run's directory: refused, or kept as a plain value."""

from __future__ import annotations

import sqlite3

import pytest

from asynctrack import MlflowClient, MlflowException

EVIL = "x'); DROP TABLE runs; --"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return MlflowClient(f"sqlite:///{tmp_path}/mlflow.db"), tmp_path / "mlflow.db"


def _tables(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    finally:
        con.close()


def test_hostile_names_and_values_are_plain_values(client):
    c, path = client
    exp = c.create_experiment(EVIL, tags={"k": EVIL})
    run = c.create_run(exp, run_name=EVIL, tags={"t": EVIL})
    c.log_param(run.info.run_id, "p", EVIL)
    c.set_tag(run.info.run_id, "q", "' OR '1'='1")
    stored = c.get_run(run.info.run_id)
    assert stored.info.run_name == EVIL and stored.data.params["p"] == EVIL
    assert stored.data.tags["t"] == EVIL and stored.data.tags["q"] == "' OR '1'='1"
    assert c.get_experiment_by_name(EVIL).experiment_id == exp
    assert c.get_experiment(exp).tags == {"k": EVIL}
    assert _tables(path) == 71


@pytest.mark.parametrize("key", [EVIL, "a'b", 'a"b', "a;b", "`x`"])
def test_hostile_keys_are_refused(client, key):
    c, path = client
    run_id = c.create_run("0").info.run_id
    for call in (
        lambda: c.log_metric(run_id, key, 1.0),
        lambda: c.log_param(run_id, key, "v"),
        lambda: c.set_tag(run_id, key, "v"),
    ):
        with pytest.raises(MlflowException) as e:
            call()
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert c.get_run(run_id).data.params == {} and _tables(path) == 71


def test_filter_strings_cannot_inject(client):
    c, path = client
    exp = c.create_experiment("e")
    a = c.create_run(exp, run_name="a").info.run_id
    b = c.create_run(exp, run_name="b").info.run_id
    c.set_tag(a, "t", "x' OR '1'='1")
    c.set_tag(b, "t", "other")
    # the quotes are part of the value: only the run that has exactly that value matches
    found = c.search_runs([exp], "tags.t = 'x'' OR ''1''=''1'")
    assert [r.info.run_id for r in found] == []
    # as in MLflow 3.18 (measured): a doubled quote is not unescaped, it matches itself
    c.set_tag(b, "u", "x'' OR ''1''=''1")
    assert [r.info.run_id for r in c.search_runs([exp], "tags.u = 'x'' OR ''1''=''1'")] == [b]
    found = c.search_runs([exp], "tags.t LIKE '%OR%'")
    assert [r.info.run_id for r in found] == [a]
    for bad in (
        "tags.t = 'a' OR 1=1",
        "tags.t = 'a'; DROP TABLE runs",
        "params.`x) OR (1=1` = 'a' OR 1",
        "attributes.run_id IN ('a') UNION SELECT * FROM runs",
    ):
        with pytest.raises(MlflowException) as e:
            c.search_runs([exp], bad)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE", bad
    found = c.search_runs([exp], "params.`x') OR ('1'='1` = 'a'")  # a weird key, as a key
    assert list(found) == []
    with pytest.raises(MlflowException):
        c.search_runs([exp], "tags.t = 'x'", order_by=["metrics.m DESC; DROP TABLE runs"])
    assert _tables(path) == 71 and len(c.search_runs([exp])) == 2


def test_artifact_paths_cannot_escape_the_run(client, tmp_path):
    c, _ = client
    run = c.create_run("0")
    for path in ("../escape.txt", "a/../../escape.txt", "/etc/passwd-copy"):
        with pytest.raises(MlflowException):
            c.log_text(run.info.run_id, "evil", path)
    assert not list(tmp_path.rglob("escape.txt")) and not (tmp_path / "etc").exists()
