"""The filter and order_by parser (asynctrack._search) against MLflow's own parser.

Every string of the corpus below (valid filters, and filters MLflow refuses) goes through
``SearchUtils.parse_search_filter`` / ``SearchExperimentsUtils.parse_search_filter`` and the
order_by parsers in the oracle, and through asynctrack's: the clauses, or the error code and
message, must be the same. A few expectations are pinned here too, so that the parser stays
tested where MLflow is not installed.
"""

from __future__ import annotations

import json
import re

import pytest

from asynctrack import MlflowException
from asynctrack._search import (
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
    run_clauses,
)
from asynctrack.entities._paged_list import PagedList
from asynctrack.store._sqlite.search import like_to_glob
from asynctrack.store.entities import PagedList as StorePagedList
from tests.oracle import needs_mlflow, oracle_python, run  # noqa: F401

RUNS = [
 "metrics.count > 1", "params.key = 'x'", "tags.user = 'x'", "metrics.rmse < 0.8 and params.model = 'rf'",
 "status = 'FINISHED'", "metrics.a = 'x'", "params.a = 1", "metrics.a > 1 or metrics.b < 2",
 "metrics.a > 1; metrics.b < 2", "attribute.run_id IN ('a', 'b')", "run_id NOT IN ('a')", "params.x IS NULL",
 "params.x is not null", "metrics.x IS NULL", "tags.`a b` = 'x'", 'tags."a b" = \'x\'', 'params.a = "x"',
 "foo.a = 'x'", "attributes.lifecycle_stage = 'active'", "start_time > 'x'", "start_time > 1.5", "metrics.a >= -1",
 "metrics.a LIKE 'x'", "params.a like '%x'", "params.a > 'x'", "run_id = 'x' AND", "metrics.a", "metrics.a > ",
 "tags.mlflow.parentRunId = 'abc'", "created > 5", "`Run name` = 'x'", "attributes.`run name` LIKE 'x%'",
 "params.a != 'b' AND params.a = 'c'", "params.a = 'it''s'", "run_id IN ()", "run_id IN (1, 2)", "status IN ('A')",
 "metrics.a == 1", "metrics.a <> 1", "metrics.a = 1e3", "metrics.a = .5", "metrics.a ILIKE 'x'", "metrics.`a.b` > 1",
 "metrics.a.b > 1", "key = 'x'", "1 = metrics.a", "metrics.a = 0x10", "params.a = x", "run_id IN ('a',)",
 "run_id in ('a', 'b')", "run_id IN ('a' 'b')", "run_id IN ('a', 1)", "metrics.a > 1 AND AND metrics.b > 2",
 "and metrics.a > 1", "(metrics.a > 1)", "metrics.a > 1 AND (params.b = 'x')", "tags.x IS NOT NULL AND params.y IS NULL",
 "attributes.status != 'RUNNING'", "run.user_id = 'me'", "attr.artifact_uri LIKE '%x'", "end_time <= 1000",
 "attributes.end_time IS NULL", "params.p = ''", "params.`with space` = 'v'", "tags.'quoted' = 'v'",
 "metrics.m > 1 and metrics.m < 5", "dataset.name = 'd'", "datasets.digest IN ('a')", "dataset.foo = 'x'",
 "metric.m != 0", "parameter.p = 'a'", "parameters.p ILIKE 'A%'", "param.p LIKE '_b'", "metrics.m >= 1.",
 "run_name = 'abc'", "Created >= 0", "`run name` != 'x'", "tags.t = 'x' OR tags.t = 'y'", "params.p = 'a' AND",
 "params.p NOT LIKE 'a'", "metrics.m IN (1)", "params.p IN ('a')", "run_id = 'a' AND run_id = 'b'", "   ",
 "run_id NOT IN ('a', 'b') AND status IN ('X')", "metrics.m > 1 AND", "metrics.m <", "params.p =",
 "experiment_id = '0'", "start_time = 1 AND end_time = 2", "status = FINISHED", "metrics.m > -1.5e-3",
 "metrics.m>1", "params.p='x'and params.q='y'", "tags.`mlflow.runName` = 'r'", "run_id IS NULL",
]
EXPS = [
 "name = 'a'", "name LIKE 'a%'", "name ILIKE 'A%'", "name != 'a'", "tags.k = 'v'", "tags.`k k` = 'v'",
 "tags.k IS NULL", "tags.k IS NOT NULL", "name IS NULL", "creation_time > 0", "last_update_time <= 5",
 "creation_time > 1.5", "creation_time > 'x'", "experiment_id = '1'", "experiment_id IN ('1', '2')",
 "experiment_id NOT IN ('1')", "experiment_id = 'x'", "experiment_id > '1'", "name IN ('a')", "foo = 'x'",
 "metrics.a > 1", "attribute.name = 'a'", "attributes.name = 'a'", "name = 'a' OR name = 'b'",
 "tags.k > 'v'", "tags.k IN ('a')", "name = 'a' AND tags.k = 'v'", "experiment_id = 1", "name = 1",
 "creation_time LIKE '1'", "tags.k = 1", "name", "tag.k = 'v'", "`tags`.k = 'v'", "experiment_id IN ('1', 'x')",
]
RUN_ORDER = [["metrics.a"], ["metrics.a DESC"], ["metrics.a desc"], ["metrics.`a b` DESC"], ["params.p ASC", "tags.t DESC"],
 ["start_time"], ["created DESC"], ["run_name"], ["status"], ["metrics.a foo"], ["metrics.a DESC ASC"], [" metrics.a"],
 ["metrics.a", "metrics.a DESC"], ["lifecycle_stage"], ["foo.a"], ["timestamp"], ["metrics.a, metrics.b"], ["run_id ASC"],
 ["attribute.end_time DESC"], ["tags.`mlflow.runName`"], ["metrics.a;"], ["1"], ["'x'"], ["metrics.a > 1"], ["created", "start_time"],
 ["tags.\"a b\" DESC"], ["run name"], ["datasets.name"], ["metrics.a  DESC"], ["metrics.a DESC NULLS LAST"]]
EXP_ORDER = [["name"], ["name DESC"], ["experiment_id"], ["creation_time ASC", "name"], ["tags.k"], ["foo"], ["last_update_time DESC"], ["metrics.a"]]


ORACLE = r"""
from mlflow.utils.search_utils import SearchUtils, SearchExperimentsUtils
def conv(v):
    return list(v) if isinstance(v, tuple) else v
def parse(fn, x):
    try:
        return {"ok": [{k: conv(v) for k, v in d.items()} for d in fn(x)]}
    except Exception as e:
        return {"err": _err(e)}
def order(fn, xs):
    try:
        return {"ok": [list(fn(x)) for x in xs]}
    except Exception as e:
        return {"err": _err(e)}
_out({
    "runs": [parse(SearchUtils.parse_search_filter, s) for s in ARGS["runs"]],
    "exps": [parse(SearchExperimentsUtils.parse_search_filter, s) for s in ARGS["exps"]],
    "run_order": [order(SearchUtils.parse_order_by_for_search_runs, o) for o in ARGS["run_order"]],
    "exp_order": [
        order(SearchExperimentsUtils.parse_order_by_for_search_experiments, o)
        for o in ARGS["exp_order"]
    ],
})
"""


def norm(message: str) -> str:
    return re.sub(
        r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message
    )


def _ours(fn, x):
    try:
        return {"ok": json.loads(json.dumps(fn(x), default=list))}
    except Exception as e:  # noqa: BLE001 - compared with what MLflow raised
        return {"err": {"error_code": getattr(e, "error_code", type(e).__name__),
                        "message": str(getattr(e, "message", e))}}


def _same(ours, theirs):
    if "err" in ours and "err" in theirs:
        return ours["err"]["error_code"] == theirs["err"]["error_code"] and norm(
            ours["err"]["message"]
        ) == norm(theirs["err"]["message"])
    return ours == theirs


def _run_order_raw(order_by):
    # MLflow's per-clause parser, without the store's alias translation and duplicate check
    from asynctrack._search.order_by import _parse
    from asynctrack._search.filters import RUN_ORDER_BY_ATTRIBUTES, run_identifier

    out = []
    for clause in order_by:
        value, asc = _parse(clause)
        ident = run_identifier(value.strip(), RUN_ORDER_BY_ATTRIBUTES)
        out.append([ident["type"], ident["key"], asc])
    return out


def _exp_order_raw(order_by):
    from asynctrack._search.filters import EXPERIMENT_ATTRIBUTES, experiment_identifier
    from asynctrack._search.order_by import _parse

    out = []
    for clause in order_by:
        value, asc = _parse(clause)
        ident = experiment_identifier(value.strip(), EXPERIMENT_ATTRIBUTES)
        out.append([ident["type"], ident["key"], asc])
    return out


@needs_mlflow
def test_parser_same_as_mlflow():
    theirs = run(ORACLE, runs=RUNS, exps=EXPS, run_order=RUN_ORDER, exp_order=EXP_ORDER)
    cases = [
        ("runs", RUNS, parse_run_filter),
        ("exps", EXPS, parse_experiment_filter),
        ("run_order", RUN_ORDER, _run_order_raw),
        ("exp_order", EXP_ORDER, _exp_order_raw),
    ]
    bad = []
    for name, inputs, fn in cases:
        for x, t in zip(inputs, theirs[name]):
            o = _ours(fn, x)
            if not _same(o, t):
                bad.append((name, x, o, t))
    assert not bad, json.dumps(bad[:5], indent=1)


# -- fuzzing: token soup, valid and not, against MLflow's parser ------------------------------
FUZZ_VOCAB = [
    "metrics.m", "params.p", "tags.t", "attributes.status", "run_id", "start_time", "metrics.`a b`",
    'tags."x.y"', "run_name", "created", "status", "name", "tags.k", "experiment_id",
    "creation_time", "=", "!=", ">", "<=", "LIKE", "ilike", "IN", "NOT", "IS", "NULL", "AND", "and",
    "OR", "'a'", "'%b'", '"c"', "1", "-2.5", "1e3", "(", ")", "('x', 'y')", "('x')", "()", ",", ";",
    "`q`", "x", ".", "'it''s'", "0x1f", "lower('a')", "DESC", "NULL", "NOT NULL", "*", "+", "`a`.b",
    "tags.`k`", "datasets.name", "-", "IS NOT",
]
ORDER_VOCAB = ["metrics.m", "params.`a b`", "tags.t", "start_time", "created", "run_name", "name",
               "DESC", "asc", "foo", "x.y", ",", "`q`", "'s'", "1", "experiment_id", "creation_time"]


def _fuzz_clauses(n, seed):
    """Mostly well-formed: AND-ed "identifier comparator value" clauses, sometimes mistyped."""
    import random

    rnd = random.Random(seed)
    idents = [t for t in FUZZ_VOCAB if t[0].isalpha() or t[0] == "`"]
    ops = ["=", "!=", ">", "<=", "LIKE", "ilike", "IN", "NOT IN", "IS NULL", "IS NOT NULL", "=="]
    values = ["'a'", "'%b'", '"c"', "1", "-2.5", "1e3", "('x', 'y')", "('x')", "()", "x", "(1)"]
    out = []
    for _ in range(n):
        clauses = []
        for _ in range(rnd.choice([1, 1, 2, 3])):
            ident, op = rnd.choice(idents), rnd.choice(ops)
            if rnd.random() < 0.6:  # the value the identifier's type wants
                kind = ident.split(".")[0]
                op = rnd.choice([">", "!=", "<="] if kind == "metrics" else ["=", "LIKE", "!="])
                value = rnd.choice(["1", "-2.5", "1e3"] if kind in ("metrics", "start_time", "created",
                                    "creation_time") else ["'a'", "'%b'", '"c"'])
            else:
                value = "" if op.startswith("IS") else rnd.choice(values)
            clauses.append(f"{ident} {op} {value}".strip())
        out.append(f" {rnd.choice(['AND', 'and', 'AND', 'OR'])} ".join(clauses))
    return out


def _fuzz(vocab, n, sizes, seed):
    import random

    rnd = random.Random(seed)
    return [" ".join(rnd.choice(vocab) for _ in range(rnd.choice(sizes))) for _ in range(n)]


@needs_mlflow
def test_parser_fuzzed_same_as_mlflow():
    filters = _fuzz(FUZZ_VOCAB, 600, [1, 2, 3, 3, 3, 4, 5, 7], seed=1) + _fuzz_clauses(600, 3)
    orders = [[o] for o in _fuzz(ORDER_VOCAB, 300, [1, 2, 2, 3], seed=2)]
    theirs = run(ORACLE, runs=filters, exps=filters, run_order=orders, exp_order=orders)
    cases = [
        ("runs", filters, parse_run_filter),
        ("exps", filters, parse_experiment_filter),
        ("run_order", orders, _run_order_raw),
        ("exp_order", orders, _exp_order_raw),
    ]
    bad = [
        (name, x, o, t)
        for name, inputs, fn in cases
        for x, t in zip(inputs, theirs[name])
        if not _same(o := _ours(fn, x), t)
    ]
    assert not bad, json.dumps(bad[:5], indent=1)
    assert sum("ok" in t for t in theirs["runs"]) > 100  # not only errors


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("metrics.rmse < 0.8 and params.model = 'rf'", [
            {"type": "metric", "key": "rmse", "comparator": "<", "value": "0.8"},
            {"type": "parameter", "key": "model", "comparator": "=", "value": "rf"},
        ]),
        ("tags.`a b` ILIKE '%x'", [{"type": "tag", "key": "a b", "comparator": "ILIKE", "value": "%x"}]),
        ('tags."mlflow.parentRunId" = "abc"',
         [{"type": "tag", "key": "mlflow.parentRunId", "comparator": "=", "value": "abc"}]),
        ("run_id IN ('a', 'b')", [{"type": "attribute", "key": "run_id", "comparator": "IN", "value": ("a", "b")}]),
        ("attr.run_id not in ('a')", [{"type": "attribute", "key": "run_id", "comparator": "NOT IN", "value": ("a",)}]),
        ("params.p is not null", [{"type": "parameter", "key": "p", "comparator": "IS NOT NULL", "value": None}]),
        ("created >= 5", [{"type": "attribute", "key": "created", "comparator": ">=", "value": 5}]),
        ("", []),
    ],
)
def test_parse_run_filter(filter_string, expected):
    assert parse_run_filter(filter_string) == expected


@pytest.mark.parametrize(
    "filter_string, message",
    [
        ("metrics.a > 1 or metrics.b < 2", "Invalid clause(s) in filter string: 'or'"),
        ("metrics.a > 1; metrics.b < 2", "Search filter contained multiple expression"),
        ("metrics.a = 'x'", "Expected numeric value type for metric. Found 'x'"),
        ("params.a = 1", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1"),
        ("foo.a = 'x'", "Invalid entity type 'foo'. Valid values are"),
        ("attributes.lifecycle_stage = 'x'", "Invalid attribute key 'lifecycle_stage' specified."),
        ("start_time > 'x'", "Expected numeric value type for numeric attribute: start_time. Found 'x'"),
        ("metrics.x IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"),
        ("status IN ('A')", "Only ['run_id'] attributes support comparison with a list"),
        ("run_id IN ()", "expected a non-empty list of string values, but got empty list"),
        ("1 = metrics.a", "Invalid comparison clause. Expected 'Identifier' found '1'"),
    ],
)
def test_parse_run_filter_errors(filter_string, message):
    with pytest.raises(MlflowException, match=re.escape(message)) as info:
        parse_run_filter(filter_string)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "clause, message",
    [
        ("params.a > 'x'", "Invalid comparator '>' not one of '{"),
        ("metrics.a LIKE 1", "Invalid comparator 'LIKE' not one of '{"),
        ("metrics.a == 1", "Invalid comparator '==' not one of '{"),
        ("status > 'x'", "Invalid comparator '>' not one of '{"),
        ("start_time LIKE 1", "Invalid comparator 'LIKE' not one of '{"),
        ("tags.t < 'x'", "Invalid comparator '<' not one of '{"),
    ],
)
def test_run_clause_comparator_errors(clause, message):
    with pytest.raises(MlflowException, match=re.escape(message)):
        run_clauses(parse_run_filter(clause))


def test_order_by():
    assert parse_run_order_by(["metrics.`a b` DESC", "created", "params.p asc"]) == [
        ("metric", "a b", False), ("attribute", "start_time", True), ("parameter", "p", True)
    ]
    assert parse_experiment_order_by(None) == [("creation_time", False), ("experiment_id", True)]
    assert parse_experiment_order_by(["name"]) == [("name", True), ("experiment_id", False)]
    for bad, message in [
        (["metrics.a sideways"], "Invalid ordering key in order_by clause 'metrics.a sideways'."),
        (["metrics.a DESC ASC"], "Invalid order_by clause 'metrics.a DESC ASC'. Could not be parsed."),
        (["metrics.a", "metrics.a DESC"], "`order_by` contains duplicate fields"),
    ]:
        with pytest.raises(MlflowException, match=re.escape(message)):
            parse_run_order_by(bad)


def test_like_to_glob():
    assert like_to_glob("a%b_c") == "a*b?c"
    assert like_to_glob("*?[x]") == "[*][?][[]x]"


def test_paged_list():
    page = PagedList([1, 2], "tok")
    assert page == [1, 2] and page.token == "tok" and page.to_list() == [1, 2]
    assert page.total_count is None and StorePagedList is PagedList
