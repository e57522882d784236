"""MLflow's search filter language for runs and experiments: parse, then check clause by clause.

``parse_run_filter`` / ``parse_experiment_filter`` turn a filter string into MLflow's clause dicts
(``{"type", "key", "comparator", "value"}``) with MLflow 3.18's errors (``SearchUtils`` and
``SearchExperimentsUtils``); ``run_clauses`` / ``experiment_clauses`` then check each clause's
comparator against its type, as MLflow's SQL store does when it builds the query, and normalize
it for a backend. Pure Python: no SQL here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException
from . import _tokens as t

METRIC, PARAM, TAG, ATTRIBUTE, DATASET = "metric", "parameter", "tag", "attribute", "dataset"
_IDENTIFIERS = [METRIC, PARAM, TAG, ATTRIBUTE, DATASET]
_ALIASES = {
    "metric": METRIC,
    "metrics": METRIC,
    "parameter": PARAM,
    "parameters": PARAM,
    "param": PARAM,
    "params": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "run": ATTRIBUTE,
    "dataset": DATASET,
    "datasets": DATASET,
}

VALID_METRIC_COMPARATORS = {">", ">=", "!=", "=", "<", "<="}
VALID_PARAM_COMPARATORS = {"!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}
VALID_TAG_COMPARATORS = {"!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}
VALID_STRING_ATTRIBUTE_COMPARATORS = {"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"}
VALID_NUMERIC_ATTRIBUTE_COMPARATORS = VALID_METRIC_COMPARATORS
VALID_DATASET_COMPARATORS = {"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"}

RUN_NUMERIC_ATTRIBUTES = {"start_time", "end_time", "created", "Created"}
RUN_SEARCH_ATTRIBUTES = {
    "artifact_uri",
    "end_time",
    "run_id",
    "run_name",
    "start_time",
    "status",
    "user_id",
    "created",
    "Created",
    "run name",
    "Run name",
    "Run Name",
}
RUN_ORDER_BY_ATTRIBUTES = {
    "artifact_uri",
    "end_time",
    "run_id",
    "run_name",
    "start_time",
    "status",
    "user_id",
    "created",
    "Created",
}
DATASET_ATTRIBUTES = {"name", "digest", "context"}

EXPERIMENT_ATTRIBUTES = {"name", "experiment_id", "creation_time", "last_update_time"}
EXPERIMENT_NUMERIC_ATTRIBUTES = {"creation_time", "last_update_time"}


def invalid(message: str) -> MlflowException:
    return MlflowException(message, INVALID_PARAMETER_VALUE)


def translate_key_alias(key: str) -> str:
    if key in ("created", "Created"):
        return "start_time"
    if key in ("run name", "Run name", "Run Name"):
        return "run_name"
    return key


# -- shared helpers (SearchUtils) ---------------------------------------------------------------
def _is_quoted(value: str, quote: str) -> bool:
    return len(value) >= 2 and value.startswith(quote) and value.endswith(quote)


def trim_backticks(value: str) -> str:
    return value[1:-1] if _is_quoted(value, "`") else value


def strip_quotes(value: str, expect_quoted_value: bool = False) -> str:
    if _is_quoted(value, "'") or _is_quoted(value, '"'):
        return value[1:-1]
    if expect_quoted_value:
        raise invalid(
            "Parameter value is either not quoted or unidentified quote types used for string "
            f"value {value}. Use either single or double quotes."
        )
    return value


def valid_entity_type(entity_type: str) -> str:
    entity_type = trim_backticks(entity_type)
    if entity_type not in _ALIASES:
        raise invalid(f"Invalid entity type '{entity_type}'. Valid values are {_IDENTIFIERS}")
    return _ALIASES[entity_type]


def run_identifier(identifier: str, valid_attributes: set[str]) -> dict[str, Any]:
    """``SearchUtils._get_identifier``: ``type.key`` (or a bare attribute) to type and key."""
    parts = identifier.split(".", 1)
    if len(parts) == 1:
        key, kind = parts[0], ATTRIBUTE
    else:
        kind = valid_entity_type(parts[0])
        key = parts[1]
    key = trim_backticks(strip_quotes(key))
    if kind == ATTRIBUTE and key not in valid_attributes:
        raise invalid(f"Invalid attribute key '{key}' specified. Valid keys are '{valid_attributes}'")
    if kind == DATASET and key not in DATASET_ATTRIBUTES:
        raise invalid(f"Invalid dataset key '{key}' specified. Valid keys are '{DATASET_ATTRIBUTES}'")
    return {"type": kind, "key": key}


_EXPERIMENT_ENTITY_TYPES = ("attribute", "attributes", "tag", "tags")


def experiment_identifier(identifier: str, valid_attributes: set[str]) -> dict[str, Any]:
    """``SearchExperimentsUtils._get_identifier``."""
    parts = identifier.split(".", 1)
    if len(parts) == 1:
        key, kind = parts[0], ATTRIBUTE
    else:
        entity_type, key = parts
        if entity_type not in _EXPERIMENT_ENTITY_TYPES:
            raise invalid(
                f"Invalid entity type '{entity_type}'. "
                f"Valid entity types are {_EXPERIMENT_ENTITY_TYPES}"
            )
        kind = valid_entity_type(entity_type)
    key = trim_backticks(strip_quotes(key))
    if kind == ATTRIBUTE and key not in valid_attributes:
        raise invalid(f"Invalid attribute key '{key}' specified. Valid keys are '{valid_attributes}'")
    return {"type": kind, "key": key}


def _parse_list(token: t.Tok) -> tuple:
    try:
        parsed = ast.literal_eval(token.value)
    except SyntaxError as e:
        raise invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but "
            "got ill-formed list."
        ) from e
    parsed = parsed if isinstance(parsed, tuple) else (parsed,)
    if len(parsed) == 0:
        raise invalid(
            "While parsing a list in the query, expected a non-empty list of string values, but "
            "got empty list"
        )
    if not all(isinstance(x, str) for x in parsed):
        raise invalid(
            "While parsing a list in the query, expected string value, punctuation, or "
            f"whitespace, but got different type in list: {parsed}"
        )
    return parsed


def _is_stringish(token: t.Tok) -> bool:
    return token.kind in (t.STRING, t.IDENTIFIER)


def _value(kind: str, key: str, token: t.Tok, numeric: set[str], list_keys: list[str]) -> Any:
    """``SearchUtils._get_value``."""
    if kind == METRIC:
        if token.kind not in t.NUMERIC:
            raise invalid(f"Expected numeric value type for metric. Found {token.value}")
        return token.value
    if kind in (PARAM, TAG):
        if _is_stringish(token):
            return strip_quotes(token.value, expect_quoted_value=True)
        raise invalid(
            f"Expected a quoted string value for {kind} (e.g. 'my-value'). Got value {token.value}"
        )
    if kind == ATTRIBUTE:
        if key in numeric:
            if token.kind not in t.NUMERIC:
                raise invalid(
                    f"Expected numeric value type for numeric attribute: {key}. "
                    f"Found {token.value}"
                )
            return int(token.value) if token.kind == t.INT else float(token.value)
        if _is_stringish(token):
            return strip_quotes(token.value, expect_quoted_value=True)
        if token.kind == t.PAREN:
            if key not in list_keys:
                raise invalid(
                    f"Only {list_keys} attributes support comparison with a list of quoted "
                    "string values."
                )
            return _parse_list(token)
        raise invalid(f"Expected a quoted string value for attributes. Got value {token.value}")
    if kind == DATASET:
        if key in DATASET_ATTRIBUTES and _is_stringish(token):
            return strip_quotes(token.value, expect_quoted_value=True)
        if token.kind == t.PAREN:
            return _parse_list(token)
        raise invalid(
            f"Expected a quoted string value for dataset attributes. Got value {token.value}"
        )
    raise MlflowException(f"Invalid identifier type. Expected one of {[METRIC, PARAM]}.")


def _validate_comparison(tokens: list[t.Tok]) -> None:
    base = "Invalid comparison clause"
    if len(tokens) == 2 and tokens[1].value.upper() in ("IS NULL", "IS NOT NULL"):
        if tokens[0].kind != t.IDENTIFIER:
            raise invalid(f"{base}. Expected 'Identifier' found '{tokens[0]}'")
        return
    if len(tokens) != 3:
        raise invalid(f"{base}. Expected 3 tokens found {len(tokens)}")
    if tokens[0].kind != t.IDENTIFIER:
        raise invalid(f"{base}. Expected 'Identifier' found '{tokens[0]}'")


def _statement(filter_string: str) -> list[t.Tok]:
    statements = t.split_statements(t.lex(filter_string))
    if not statements:
        raise invalid(f"Invalid filter '{filter_string}'. Could not be parsed.")
    if len(statements) > 1:
        raise invalid(
            f"Search filter contained multiple expression {filter_string!r}. "
            "Provide AND-ed expression list."
        )
    return t.join_in_comparisons(t.group(statements[0]))


def _is_valid_statement_token(tok: t.Tok) -> bool:
    return tok.kind == t.COMPARISON_GROUP or tok.is_whitespace or tok.is_keyword("AND")


def parse_run_filter(filter_string: str | None) -> list[dict[str, Any]]:
    """MLflow's ``SearchUtils.parse_search_filter``: the clauses of a runs filter."""
    if not filter_string:
        return []
    tokens = _statement(filter_string)
    invalids = [tok for tok in tokens if not _is_valid_statement_token(tok)]
    if invalids:
        clauses = ", ".join(f"'{tok}'" for tok in invalids)
        raise invalid(f"Invalid clause(s) in filter string: {clauses}")
    out = []
    for comparison in (tok for tok in tokens if tok.kind == t.COMPARISON_GROUP):
        parts = [p for p in comparison.children if not p.is_whitespace]
        _validate_comparison(parts)
        if len(parts) == 2:
            comp = run_identifier(parts[0].value, RUN_SEARCH_ATTRIBUTES)
            if comp["type"] not in (TAG, PARAM):
                raise invalid(
                    "IS NULL / IS NOT NULL is only supported for tags and params, "
                    f"not for '{comp['type']}' '{comp['key']}'"
                )
            comp["comparator"] = parts[1].value.upper()
            comp["value"] = None
        else:
            comp = run_identifier(parts[0].value, RUN_SEARCH_ATTRIBUTES)
            comp["comparator"] = parts[1].value
            comp["value"] = _value(
                comp["type"], comp["key"], parts[2], RUN_NUMERIC_ATTRIBUTES, ["run_id"]
            )
        out.append(comp)
    return out


def parse_experiment_filter(filter_string: str | None) -> list[dict[str, Any]]:
    """MLflow's ``SearchExperimentsUtils.parse_search_filter``."""
    if not filter_string:
        return []
    tokens = _statement(filter_string)
    invalids = [tok for tok in tokens if not _is_valid_statement_token(tok)]
    if invalids:
        raise invalid(f"Invalid clause(s) in filter string: {', '.join(map(str, invalids))}")
    out = []
    for comparison in (tok for tok in tokens if tok.kind == t.COMPARISON_GROUP):
        parts = [p for p in comparison.children if not p.is_whitespace]
        _validate_comparison(parts)
        comp = experiment_identifier(parts[0].value, EXPERIMENT_ATTRIBUTES)
        if len(parts) == 2:
            if comp["type"] != TAG:
                raise invalid(
                    "IS NULL / IS NOT NULL is only supported for tags, "
                    f"not for attribute '{comp['key']}'"
                )
            comp["comparator"] = parts[1].value.upper()
            comp["value"] = None
        else:
            comp["comparator"] = parts[1].value
            comp["value"] = _value(
                comp["type"],
                comp["key"],
                parts[2],
                EXPERIMENT_NUMERIC_ATTRIBUTES,
                ["experiment_id"],
            )
        out.append(comp)
    return out


# -- clause checks, as MLflow's SQL store makes them while building its query -----------------
@dataclass(frozen=True)
class Clause:
    """One checked clause: ``kind`` is metric/parameter/tag/attribute; ``key`` is translated
    (``created`` -> ``start_time``); ``comparator`` upper-cased; ``value`` ready to bind."""

    kind: str
    key: str
    comparator: str
    value: Any


def _check(comparator: str, valid: set[str], closing_quote: str = "") -> None:
    if comparator not in valid:
        raise invalid(f"Invalid comparator '{comparator}' not one of '{valid}{closing_quote}")


def run_clauses(parsed: list[dict[str, Any]]) -> list[Clause]:
    """``_get_sqlalchemy_filter_clauses``' checks: comparators per type, metric values as floats."""
    out = []
    for c in parsed:
        kind, comparator, value = c["type"], c["comparator"].upper(), c["value"]
        key = translate_key_alias(c["key"])
        if kind == ATTRIBUTE and key not in RUN_NUMERIC_ATTRIBUTES:
            _check(comparator, VALID_STRING_ATTRIBUTE_COMPARATORS, "'")
        elif kind == ATTRIBUTE:
            # MLflow names the string comparators in this message
            if comparator not in VALID_NUMERIC_ATTRIBUTE_COMPARATORS:
                raise invalid(
                    f"Invalid comparator '{comparator}' not one of "
                    f"'{VALID_STRING_ATTRIBUTE_COMPARATORS}"
                )
        elif kind == METRIC:
            _check(comparator, VALID_METRIC_COMPARATORS)
            value = float(value)
        elif kind == PARAM:
            _check(comparator, VALID_PARAM_COMPARATORS, "'")
        elif kind == TAG:
            _check(comparator, VALID_TAG_COMPARATORS)
        elif kind == DATASET:
            _check(comparator, VALID_DATASET_COMPARATORS)
        out.append(Clause(kind, key, comparator, value))
    return out


def _experiment_id(value: Any) -> int:
    try:
        return int(value)
    except (ValueError, TypeError):
        raise invalid(
            f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer."
        ) from None


def experiment_clauses(parsed: list[dict[str, Any]]) -> list[Clause]:
    """``_get_search_experiments_filter_clauses``' checks and conversions."""
    out = []
    for c in parsed:
        kind, key, comparator, value = c["type"], c["key"], c["comparator"].upper(), c["value"]
        if kind == ATTRIBUTE:
            if key == "experiment_id":
                if comparator not in ("=", "!=", "IN", "NOT IN"):
                    raise invalid(f"Invalid comparator for experiment_id: {comparator}")
                value = (
                    tuple(_experiment_id(v) for v in value)
                    if isinstance(value, tuple)
                    else _experiment_id(value)
                )
            elif key not in EXPERIMENT_NUMERIC_ATTRIBUTES:
                _check(comparator, VALID_STRING_ATTRIBUTE_COMPARATORS, "'")
                if comparator not in ("=", "!=", "LIKE", "ILIKE"):
                    raise invalid(f"Invalid comparator for string attribute: {comparator}")
            else:
                if comparator not in VALID_NUMERIC_ATTRIBUTE_COMPARATORS:
                    raise invalid(
                        f"Invalid comparator '{comparator}' not one of "
                        f"'{VALID_STRING_ATTRIBUTE_COMPARATORS}"
                    )
                if isinstance(value, float):
                    raise invalid(f"Invalid value for numeric attribute '{key}': {str(value)!r}")
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    raise invalid(
                        f"Invalid value for numeric attribute '{key}': {value!r}"
                    ) from None
        elif kind == TAG:
            if comparator not in ("IS NULL", "IS NOT NULL", "=", "!=", "LIKE", "ILIKE"):
                raise invalid(f"Invalid comparator for tag: {comparator}")
        else:
            raise invalid(f"Invalid token type: {kind}")
        out.append(Clause(kind, key, comparator, value))
    return out
