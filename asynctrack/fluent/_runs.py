"""Active runs: one stack per thread, as in MLflow 3, and the run lifecycle around it.

Beyond MLflow 3.18: ``start_run(nested=True)`` in a thread with no run of its own makes a child
of the main thread's active run (what MLflow's documents promise for child runs in threads;
MLflow makes a top-level run); a fork-started child process starts with no active run (MLflow's
inherits the parent's, so that its start_run fails and its exit ends the parent's run); a ``with`` block left by KeyboardInterrupt ends its run KILLED;
``end_run`` with a bad status leaves the run active instead of dropping it; and at exit every
run still active in any thread is ended (MLflow ends only the main thread's innermost one).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .. import _validation as v
from .. import system_metrics
from ..client import MlflowClient, validate_run_status
from ..entities import LifecycleStage, Run, RunStatus, RunTag
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from ..writer import before_shutdown
from . import _experiments
from ._client import client
from ._context import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE, resolve_tags
from ._experiments import _get_experiment_id

_logger = logging.getLogger("asynctrack")

FINISHED = RunStatus.to_string(RunStatus.FINISHED)
FAILED = RunStatus.to_string(RunStatus.FAILED)
KILLED = RunStatus.to_string(RunStatus.KILLED)


class ActiveRun(Run):
    """A started run; as a context manager it ends the run when the block is left."""

    def __init__(self, run: Run, run_client: MlflowClient | None = None) -> None:
        Run.__init__(self, run.info, run.data, run.inputs, run.outputs)
        # The client that started the run logs to it: a later set_tracking_uri must not send
        # this run's points to another store.
        self._client = run_client or client()
        self._run_id = run.info.run_id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> bool:
        if any(r._run_id == self._run_id for r in _local.stack):
            if exc_type is None:
                status = FINISHED
            elif issubclass(exc_type, KeyboardInterrupt):
                status = KILLED
            else:
                status = FAILED
            end_run(status)
        return exc_type is None


# -- the per-thread stacks -------------------------------------------------------------------------
_stacks: dict[int, list[ActiveRun]] = {}  # thread ident -> that thread's stack, for exit and nesting
_stacks_lock = threading.Lock()


class _ThreadState(threading.local):
    """Each thread's active-run stack and the id of the last run it ended."""

    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.last_run_id: str | None = None


def _publish(stack: list[ActiveRun]) -> None:
    """Make this thread's (non-empty) stack visible to other threads and to the exit hook."""
    with _stacks_lock:
        for ident in [t for t, s in _stacks.items() if not s]:
            del _stacks[ident]  # threads whose runs all ended (or that are gone)
        _stacks[threading.get_ident()] = stack


_local = _ThreadState()


def _main_thread_run() -> ActiveRun | None:
    stack = _stacks.get(threading.main_thread().ident or -1)
    return stack[-1] if stack else None


# The run that was active in the forking thread when this process was forked, if any. The child
# starts with no active run of its own (its exit must not end the parent's runs, and a plain
# start_run must work there, as MLflow's documents show for fork pools); nested=True makes a
# child of this run, as it does of the main thread's run in a thread.
_fork_parent_run_id: str | None = None


def _after_fork_in_child() -> None:
    global _stacks_lock, _fork_parent_run_id
    stack = _local.stack
    _fork_parent_run_id = stack[-1]._run_id if stack else None
    _local.stack = []
    _local.last_run_id = None
    _stacks.clear()
    _stacks_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _inherited_parent_run_id() -> str | None:
    """The parent of a nested run started where no run is active: the main thread's active run
    (from another thread), else the run active where this process was forked."""
    if threading.current_thread() is not threading.main_thread():
        run = _main_thread_run()
        if run is not None:
            return run._run_id
    return _fork_parent_run_id


# -- the lifecycle ---------------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run, or resume ``run_id`` (or ``MLFLOW_RUN_ID``), and make it active here."""
    stack = _local.stack
    if experiment_id is not None and not isinstance(experiment_id, (str, int)):
        raise MlflowException(
            f"Invalid experiment id: {experiment_id} of type {type(experiment_id)}. "
            "Must be one of str, int, or None.",
            INVALID_PARAMETER_VALUE,
        )
    experiment_id = str(experiment_id) if isinstance(experiment_id, int) else experiment_id
    if stack and not nested:
        raise MlflowException(
            f"Run with UUID {stack[0]._run_id} is already active. To start a new run, first end "
            "the current run with mlflow.end_run(). To start a nested run, call start_run with "
            "nested=True",
            INVALID_PARAMETER_VALUE,
        )
    c = client()
    existing_run_id = run_id or os.environ.pop("MLFLOW_RUN_ID", None) or None
    if existing_run_id:
        run = _resume(c, existing_run_id, run_name, tags, description)
    else:
        run = _create(c, stack, experiment_id, run_name, nested, parent_run_id, tags, description)
    system_metrics.start_for_run(run.info.run_id, c, log_system_metrics, bool(existing_run_id))
    active = ActiveRun(run, c)
    stack.append(active)
    _publish(stack)
    return active


def _resume(c: MlflowClient, run_id: str, run_name, tags, description) -> Run:
    v.validate_run_id(run_id)
    run = c.get_run(run_id)
    active_experiment = _experiments._active_experiment_id
    if active_experiment is not None and active_experiment != run.info.experiment_id:
        raise MlflowException(
            f"Cannot start run with ID {run_id} because active experiment ID does not match "
            "environment run ID. Make sure --experiment-name or --experiment-id matches "
            "experiment set with set_experiment(), or just use command-line arguments"
        )
    if run.info.lifecycle_stage == LifecycleStage.DELETED:
        raise MlflowException(
            f"Cannot start run with ID {run_id} because it is in the deleted state."
        )
    c._resume_run(run_id, run.info.end_time, run_name)
    tags = dict(tags or {})
    _add_description(tags, description)
    if tags:
        c.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])
    return c.get_run(run_id)


def _create(c: MlflowClient, stack, experiment_id, run_name, nested, parent_run_id, tags, description):
    if parent_run_id:
        v.validate_run_id(parent_run_id)
        if stack and parent_run_id != stack[-1]._run_id:
            current = stack[-1]._run_id
            raise MlflowException(
                f"Current run with UUID {current} does not match the specified parent_run_id "
                f"{parent_run_id}. To start a new nested run under the parent run with UUID "
                f"{current}, first end the current run with mlflow.end_run()."
            )
        if c.get_run(parent_run_id).info.lifecycle_stage == LifecycleStage.DELETED:
            raise MlflowException(
                f"Cannot start run under parent run with ID {parent_run_id} because it is in "
                "the deleted state."
            )
    elif stack:
        parent_run_id = stack[-1]._run_id
    elif nested:
        parent_run_id = _inherited_parent_run_id()
    user_tags = dict(tags or {})
    _add_description(user_tags, description)
    if parent_run_id is not None:
        user_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    if run_name:
        user_tags[MLFLOW_RUN_NAME] = run_name
    exp = experiment_id if experiment_id is not None else _get_experiment_id()
    return c.create_run(experiment_id=exp, tags=resolve_tags(user_tags), run_name=run_name)


def _add_description(tags: dict[str, Any], description: str | None) -> None:
    if description:
        if MLFLOW_RUN_NOTE in tags:
            raise MlflowException(
                f"Description is already set via the tag {MLFLOW_RUN_NOTE} in tags.Remove the "
                f"key {MLFLOW_RUN_NOTE} from the tags or omit the description.",
                INVALID_PARAMETER_VALUE,
            )
        tags[MLFLOW_RUN_NOTE] = description


def end_run(status: str = FINISHED) -> None:
    """End this thread's innermost active run once everything logged to it is stored."""
    stack = _local.stack
    if not stack:
        return
    validate_run_status(status)  # before the run leaves the stack: a typo must not orphan it
    os.environ.pop("MLFLOW_RUN_ID", None)
    run = stack.pop()
    _local.last_run_id = run._run_id
    _terminate(run, status)


def _terminate(run: ActiveRun, status: str) -> None:
    # The sampler stops first: its last points are queued before the run's end, so they are
    # stored when end_run returns.
    system_metrics.stop_for_run(run._run_id)
    wait_for_artifacts = getattr(run._client, "_wait_artifact_copies", None)
    if wait_for_artifacts is not None:
        wait_for_artifacts(run._run_id)
    # A store that is down must neither lose the run's end nor stop the user's script as it
    # leaves its ``with start_run()``: the status is kept with the asynchronous records.
    end = getattr(run._client, "_end_run_or_keep", None) or run._client.set_terminated
    end(run._run_id, status)


def active_run() -> ActiveRun | None:
    """This thread's innermost active run, or None."""
    stack = _local.stack
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the last run this thread ended (read again from the store)."""
    current = active_run()
    if current is not None:
        return current
    if _local.last_run_id is None:
        return None
    return get_run(_local.last_run_id)


def _get_or_start_run() -> ActiveRun:
    """The run that module-level logging goes to: this thread's, started if there is none."""
    stack = _local.stack
    if stack:
        return stack[-1]
    return start_run()


def get_run(run_id: str) -> Run:
    return client().get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    return client().get_parent_run(run_id)


def delete_run(run_id: str) -> None:
    client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    client().restore_run(run_id)


def end_all_runs(status: str) -> None:
    """End every active run of every thread with ``status``, innermost first."""
    main = threading.main_thread().ident
    with _stacks_lock:
        stacks = sorted(_stacks.items(), key=lambda item: item[0] == main)  # main thread's last
    for _, stack in stacks:
        while stack:
            run = stack.pop()
            try:
                _terminate(run, status)
            except Exception as exc:  # noqa: BLE001 - the other runs must still be ended
                _logger.error("asynctrack: could not end run %s at exit: %s", run._run_id, exc)


# At exit, every run still active in any thread ends FINISHED, as end_run would end it.
before_shutdown(lambda: end_all_runs(FINISHED))
