"""Property tests: the SQL search agrees with a plain-Python evaluation of the same query.

Hypothesis writes filters (AND-ed clauses on metrics, params, tags and run attributes, with
LIKE/ILIKE patterns full of wildcards and GLOB metacharacters, IN lists, IS [NOT] NULL) and
order_by lists over a fixed, awkward set of runs (tests/_search_data.py). The reference reads
every run with ``get_run`` (another code path), keeps those the clauses accept, with MLflow's
in-memory semantics (``SearchUtils._does_run_match_clause``: a run without the key does not
match; NaN only satisfies ``!=``), and orders them as ``SearchUtils.sort`` does (missing, then
NaN, last in both directions; start_time DESC then run_id). Paging through the result in
random page sizes must give the same runs, each once.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from asynctrack import MlflowClient
from asynctrack.entities import ViewType
from tests._search_data import METRIC_KEYS, PARAM_KEYS, STATUSES, TAG_KEYS, build

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("props") / "mlflow.db"
    uri = f"sqlite:///{path}"
    data = build(uri, n_runs=80, seed=11)
    client = MlflowClient(uri)
    runs = [client.get_run(r) for r in data["runs"]]
    return _World({"client": client, "data": data, "runs": runs})


class _World(dict):
    def __repr__(self) -> str:  # hypothesis prints fixtures of failing examples
        return "<search world>"


# -- the reference ------------------------------------------------------------------------------
def _like(value: str, pattern: str, ignore_case: bool) -> bool:
    regex = re.escape(pattern).replace("%", ".*").replace("_", ".")
    if not pattern.startswith("%"):
        regex = "^" + regex
    if not pattern.endswith("%"):
        regex += "$"
    return re.compile(regex, re.IGNORECASE if ignore_case else 0).match(value) is not None


_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "LIKE": lambda a, b: _like(a, b, False),
    "ILIKE": lambda a, b: _like(a, b, True),
    "IN": lambda a, b: a in b,
    "NOT IN": lambda a, b: a not in b,
}


def _lhs(run, kind, key):
    if kind == "metrics":
        return run.data.metrics.get(key)
    if kind == "params":
        return run.data.params.get(key)
    if kind == "tags":
        return run.data.tags.get(key)
    if key == "run_name":
        return run.data.tags.get("mlflow.runName")  # MLflow filters names on the tag
    return getattr(run.info, key)


def matches(run, clauses) -> bool:
    for kind, key, op, value in clauses:
        lhs = _lhs(run, kind, key)
        if op in ("IS NULL", "IS NOT NULL"):
            if (lhs is None) != (op == "IS NULL"):
                return False
            continue
        if lhs is None or not _OPS[op](lhs, value):
            return False
    return True


def sort_key(run, kind, key, ascending):
    if kind == "attributes":
        value = getattr(run.info, key)
    else:
        value = _lhs(run, kind, key)
    is_none = value is None
    is_nan = isinstance(value, float) and math.isnan(value)
    fill = (1 if ascending else -1) * math.inf
    if is_none:
        value = fill
    elif is_nan:
        value = -fill
    missing = is_none or is_nan
    return (missing, value) if ascending else (not missing, value)


def reference(runs, clauses, order, stages):
    found = [r for r in runs if r.info.lifecycle_stage in stages and matches(r, clauses)]
    found.sort(key=lambda r: (-r.info.start_time, r.info.run_id))
    for kind, key, ascending in reversed(order):
        found.sort(key=lambda r: sort_key(r, kind, key, ascending), reverse=not ascending)
    return [r.info.run_id for r in found]


# -- queries ---------------------------------------------------------------------------------
def _quote_key(key: str) -> str:
    return f"`{key}`" if (" " in key or "." in key) else key


_PATTERN = st.text(alphabet="aAbBc%_*?[]", max_size=4)
_STRING = st.sampled_from(["abc", "Abc", "a_c", "a%c", "a*c", "[ab]c", "", "x y", "b", "zzz"])
_NUMBER = st.sampled_from(["0", "-1", "0.5", "1", "1.0", "2.5", "100", "1e308", "-1e308", "1e-3"])
_TIME = st.sampled_from([1_700_000_000_000, 1_700_000_002_000, 1_700_000_010_000, 1_700_000_010_500])


@st.composite
def clause(draw):
    kind = draw(st.sampled_from(["metrics", "params", "tags", "attributes"]))
    if kind == "metrics":
        key = draw(st.sampled_from(METRIC_KEYS + ["missing"]))
        op = draw(st.sampled_from(["=", "!=", ">", ">=", "<", "<="]))
        number = draw(_NUMBER)
        return f"metrics.{_quote_key(key)} {op} {number}", ("metrics", key, op, float(number))
    if kind in ("params", "tags"):
        keys = PARAM_KEYS if kind == "params" else TAG_KEYS + ["mlflow.parentRunId"]
        key = draw(st.sampled_from(keys + ["missing"]))
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"]))
        if op in ("IS NULL", "IS NOT NULL"):
            return f"{kind}.{_quote_key(key)} {op}", (kind, key, op, None)
        value = draw(_PATTERN if "LIKE" in op else _STRING)
        return f"{kind}.{_quote_key(key)} {op} '{value}'", (kind, key, op, value)
    key = draw(st.sampled_from(["status", "start_time", "end_time", "run_name", "user_id", "run_id"]))
    if key in ("start_time", "end_time"):
        op = draw(st.sampled_from(["=", "!=", ">", ">=", "<", "<="]))
        value = draw(_TIME)
        return f"attributes.{key} {op} {value}", ("attributes", key, op, value)
    if key == "status":
        # (MLflow allows IN / NOT IN on run_id only)
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
        value = draw(st.sampled_from(STATUSES + ["f%", "%ED", "R_NNING"]))
        return f"status {op} '{value}'", ("attributes", "status", op, value)
    if key == "run_id":
        # IN/NOT IN on run ids, drawn from the runs themselves at query time
        op = draw(st.sampled_from(["IN", "NOT IN"]))
        picks = draw(st.lists(st.integers(0, 79), min_size=1, max_size=5))
        return None, ("attributes", "run_id", op, tuple(picks))
    op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
    value = draw(_PATTERN if "LIKE" in op else st.sampled_from(["alpha", "Alpha", "ann", "bob", "Bob"]))
    return f"attributes.{key} {op} '{value}'", ("attributes", key, op, value)


_ORDER_KEYS = (
    [("metrics", k) for k in METRIC_KEYS + ["missing"]]
    + [("params", k) for k in PARAM_KEYS]
    + [("tags", k) for k in TAG_KEYS]
    + [("attributes", k) for k in ("start_time", "end_time", "run_name", "status", "user_id")]
)


@st.composite
def query(draw):
    clauses = draw(st.lists(clause(), max_size=3))
    order = draw(st.lists(st.sampled_from(_ORDER_KEYS), max_size=3, unique=True))
    order = [(kind, key, draw(st.booleans())) for kind, key in order]
    view = draw(st.sampled_from([ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL]))
    return clauses, order, view


def _render(world, clauses, order):
    texts, structured = [], []
    for text, c in clauses:
        if text is None:  # run_id IN (...): indexes into the runs
            ids = tuple(world["data"]["runs"][i] for i in c[3])
            c = (c[0], c[1], c[2], ids)
            text = f"run_id {c[2]} (" + ", ".join(f"'{i}'" for i in ids) + ")"
        texts.append(text)
        structured.append(c)
    order_by = [
        f"{kind}.{_quote_key(key)} {'ASC' if asc else 'DESC'}" for kind, key, asc in order
    ]
    return " AND ".join(texts), structured, order_by


@SETTINGS
@given(q=query())
def test_sql_search_matches_python_reference(world, q):
    clauses, order, view = q
    filter_string, structured, order_by = _render(world, clauses, order)
    stages = {ViewType.ACTIVE_ONLY: {"active"}, ViewType.DELETED_ONLY: {"deleted"}}.get(
        view, {"active", "deleted"}
    )
    expected = reference(world["runs"], structured, order, stages)
    got = world["client"].search_runs(
        world["data"]["experiments"], filter_string, view, None, order_by
    )
    event("matches: " + ("none" if not expected else "some" if len(expected) < 20 else "many"))
    assert [r.info.run_id for r in got] == expected, (filter_string, order_by)


@SETTINGS
@given(q=query(), page_size=st.integers(1, 30))
def test_pages_cover_every_run_once(world, q, page_size):
    clauses, order, view = q
    filter_string, _, order_by = _render(world, clauses, order)
    client, exps = world["client"], world["data"]["experiments"]
    whole = [r.info.run_id for r in client.search_runs(exps, filter_string, view, None, order_by)]
    pages, token = [], None
    while True:
        page = client.search_runs(exps, filter_string, view, page_size, order_by, token)
        assert len(page) <= page_size
        pages.extend(r.info.run_id for r in page)
        token = page.token
        if token is None:
            break
        assert len(page) == page_size
    assert pages == whole
