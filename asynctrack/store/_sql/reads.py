"""Reading MLflow's tables back into entities, with the SQL store's errors and orderings.

Dialect-neutral: every function takes a ``Reader`` (a DB-API-like connection whose ``execute``
takes ``?`` placeholders and returns a cursor), which is a sqlite3 connection as it is, and the
PostgreSQL store's psycopg connection behind a thin adapter (``_postgres.reading``)."""

from __future__ import annotations

import base64
import json
from typing import Any, Protocol

from ...entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunTag,
)
from ...entities._logged_model import LoggedModelOutput
from ...exceptions import INVALID_PARAMETER_VALUE, MlflowException
from .rules import experiment_not_found, run_not_found



class Reader(Protocol):
    """What these reads need of a connection: ``execute(sql with ? placeholders, args)``
    returning a cursor (``fetchone``, ``fetchall``, iteration)."""

    def execute(self, sql: str, args: Any = ...) -> Any: ...


_EXPERIMENT_COLUMNS = (
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time, "
    "workspace"
)
_RUN_COLUMNS = (
    "run_uuid, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, "
    "experiment_id"
)


def _experiment(conn: Reader, row: tuple) -> Experiment:
    exp_id, name, location, stage, created, updated, workspace = row
    tags = [
        ExperimentTag(k, v)
        for k, v in conn.execute(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = ?", (exp_id,)
        )
    ]
    return Experiment(
        str(exp_id),
        name,
        location,
        stage,
        tags=tags,
        creation_time=created,
        last_update_time=updated,
        workspace=workspace,
    )


def experiment_by_id(conn: Reader, experiment_id: int) -> Experiment:
    row = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = ?", (experiment_id,)
    ).fetchone()
    if row is None:
        raise experiment_not_found(experiment_id)
    return _experiment(conn, row)


def experiment_by_name(conn: Reader, name: str) -> Experiment | None:
    row = conn.execute(
        f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else _experiment(conn, row)


def run_info_from_row(row: tuple) -> RunInfo:
    """A RunInfo from a row of ``_RUN_COLUMNS`` (experiment ids are strings in the API)."""
    run_uuid, name, user_id, status, start, end, stage, artifact_uri, exp_id = row
    return RunInfo(
        run_uuid, str(exp_id), user_id, status, start, end, stage, artifact_uri, run_name=name
    )


def run(conn: Reader, run_id: str) -> Run:
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
    if row is None:
        raise run_not_found(run_id)
    info = run_info_from_row(row)
    metrics = Metric._from_rows(
        conn.execute(
            "SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = ?",
            (run_id,),
        ).fetchall()
    )
    params = [
        Param(k, v) for k, v in conn.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,))
    ]
    tags = [
        RunTag(k, v) for k, v in conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,))
    ]
    # The models the run logged (MLflow 3's RUN_OUTPUT inputs rows); a run without any keeps
    # no outputs, as before logged models existed.
    outputs = model_outputs(conn, [run_id]).get(run_id)
    return Run(
        info,
        RunData(metrics=metrics, params=params, tags=tags),
        RunInputs(dataset_inputs=dataset_inputs(conn, [run_id]).get(run_id, [])),
        RunOutputs(outputs) if outputs else None,
    )


def add_inputs_and_outputs(conn: Any, runs: list[Run], mark: str = "?") -> None:
    """A search page's dataset inputs and logged-model outputs, set on its runs (MLflow's
    search returns both with each run, as get_run does). A store with no inputs rows at all,
    the usual one, pays one indexed probe instead of the two IN queries."""
    if not runs or conn.execute("SELECT 1 FROM inputs LIMIT 1").fetchone() is None:
        return
    ids = [run.info.run_id for run in runs]
    inputs, outputs = dataset_inputs(conn, ids, mark), model_outputs(conn, ids, mark)
    for run in runs:
        run_id = run.info.run_id
        if run_id in inputs:
            run._inputs = RunInputs(dataset_inputs=inputs[run_id])
        if run_id in outputs:
            run._outputs = RunOutputs(outputs[run_id])


def model_outputs(conn: Any, run_ids: list[str], mark: str = "?") -> dict[str, list[LoggedModelOutput]]:
    """The models runs logged (run id -> LoggedModelOutputs), from MLflow 3's RUN_OUTPUT
    rows of ``inputs``. ``mark``: the connection's placeholder, as ``dataset_inputs``'s."""
    out: dict[str, list[LoggedModelOutput]] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        sql = (
            "SELECT source_id, destination_id, step FROM inputs WHERE source_type = 'RUN_OUTPUT' "
            f"AND destination_type = 'MODEL_OUTPUT' AND source_id IN ({', '.join([mark] * len(chunk))})"
        )
        for run_id, model_id, step in conn.execute(sql, tuple(chunk)).fetchall():
            out.setdefault(run_id, []).append(LoggedModelOutput(model_id, step))
    return out


def dataset_inputs(conn: Any, run_ids: list[str], mark: str = "?") -> dict[str, list[DatasetInput]]:
    """The dataset inputs of runs (run id -> DatasetInputs with their tags), by MLflow's
    query (_get_run_inputs): inputs joined to their datasets, their tags outer-joined.
    ``mark``: the connection's placeholder (``?``; a raw psycopg connection's ``%s``)."""
    out: dict[str, dict[str, DatasetInput]] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        sql = (
            "SELECT inputs.destination_id AS run_uuid, datasets.dataset_uuid, datasets.name,"
            " datasets.digest, datasets.dataset_source_type, datasets.dataset_source,"
            " datasets.dataset_schema, datasets.dataset_profile, input_tags.name, input_tags.value"
            " FROM inputs JOIN datasets ON inputs.source_id = datasets.dataset_uuid"
            " LEFT OUTER JOIN input_tags ON input_tags.input_uuid = inputs.input_uuid"
            f" WHERE inputs.destination_type = 'RUN' AND inputs.destination_id IN"
            f" ({', '.join([mark] * len(chunk))}) ORDER BY run_uuid"
        )
        for run_uuid, dataset_uuid, name, digest, stype, source, schema, profile, tkey, tvalue in conn.execute(
            sql, tuple(chunk)
        ):
            per_run = out.setdefault(run_uuid, {})
            entry = per_run.get(dataset_uuid)
            if entry is None:
                entry = per_run[dataset_uuid] = DatasetInput(
                    Dataset(name, digest, stype, source, schema, profile), tags=[]
                )
            if tkey is not None:
                entry.tags.append(InputTag(tkey, tvalue))
    return {run_uuid: list(per_run.values()) for run_uuid, per_run in out.items()}


def run_state(conn: Reader, run_id: str) -> tuple[str, str] | None:
    """(lifecycle_stage, status) of a run, or None if there is no such run."""
    return conn.execute(
        "SELECT lifecycle_stage, status FROM runs WHERE run_uuid = ?", (run_id,)
    ).fetchone()


_NO_LIMIT = 2**63 - 1


def create_page_token(offset: int) -> str:
    """MLflow's page token: base64 of ``{"offset": n}``."""
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8")).decode("utf-8")


def parse_page_token(page_token: str | None) -> int:
    """The offset in a page token, with MLflow's errors for a bad one."""
    if not page_token:
        return 0
    try:
        decoded = base64.b64decode(page_token)
    except (TypeError, ValueError):
        raise MlflowException(
            "Invalid page token, could not base64-decode", INVALID_PARAMETER_VALUE
        ) from None
    try:
        parsed = json.loads(decoded)
    except ValueError:
        raise MlflowException(
            f"Invalid page token, decoded value={decoded}", INVALID_PARAMETER_VALUE
        ) from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    if not offset:
        raise MlflowException(f"Invalid page token, parsed value={parsed}", INVALID_PARAMETER_VALUE)
    try:
        offset = int(offset)
    except (TypeError, ValueError):
        raise MlflowException(
            f"Invalid page token, not stringable {offset}", INVALID_PARAMETER_VALUE
        ) from None
    return offset


def metric_history(
    conn: Reader,
    run_id: str,
    key: str,
    max_results: int | None = None,
    page_token: str | None = None,
) -> tuple[list[Metric], str | None]:
    """Every point of one metric, in MLflow's order (timestamp, step, value), paged as MLflow."""
    offset = parse_page_token(page_token)
    if max_results is None and not offset:
        # The whole history: rows come off the primary-key index almost in order, and Python's
        # sort finishes an (almost) sorted list in linear time; SQLite's ORDER BY would sort
        # them again in a temporary B-tree (a third of the read's time). (timestamp, step,
        # stored value) is MLflow's order; is_nan only breaks ties MLflow leaves undefined.
        rows = conn.execute(
            "SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ?",
            (run_id, key),
        ).fetchall()
        rows.sort()
        return Metric._from_history(key, rows), None
    sql = (
        "SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
        "ORDER BY timestamp, step, value"
    )
    args: tuple = (run_id, key)
    if max_results is not None:
        sql += " LIMIT ? OFFSET ?"
        args += (max_results + 1, offset)
    else:  # SQLite needs a LIMIT before OFFSET; PostgreSQL takes no -1: the largest bigint
        sql += " LIMIT ? OFFSET ?"
        args += (_NO_LIMIT, offset)
    metrics = Metric._from_history(key, conn.execute(sql, args).fetchall())
    next_token = None
    if max_results is not None and len(metrics) == max_results + 1:
        next_token = create_page_token(offset + max_results)
        metrics = metrics[:max_results]
    return metrics, next_token
