"""MLflow's ``order_by`` clauses: ``"<identifier> [ASC|DESC]"`` with MLflow's parsing and errors."""

from __future__ import annotations

import shlex

from ..exceptions import MlflowException
from . import _tokens as t
from .filters import (
    ATTRIBUTE,
    EXPERIMENT_ATTRIBUTES,
    METRIC,
    PARAM,
    RUN_ORDER_BY_ATTRIBUTES,
    TAG,
    experiment_identifier,
    invalid,
    run_identifier,
    translate_key_alias,
)


def _order_token(order_by: str) -> str:
    """``SearchUtils._validate_order_by_and_generate_token``: one identifier, maybe ordered."""
    statements = t.split_statements(t.lex(order_by))
    tokens = t.group(statements[0]) if len(statements) == 1 else []
    ok = (len(tokens) == 1 and tokens[0].kind == t.IDENTIFIER) or (
        len(tokens) >= 3
        and tokens[0].kind == t.IDENTIFIER
        and all(tok.is_whitespace for tok in tokens[1:-1])
        and tokens[-1].kind in (t.ORDER, t.IDENTIFIER)
        and len(tokens[-1].children) <= 1
    )
    if not ok:
        raise invalid(f"Invalid order_by clause '{order_by}'. Could not be parsed.")
    return order_by


def _parse(order_by: str) -> tuple[str, bool]:
    token_value = _order_token(order_by)
    try:
        tokens = shlex.split(token_value.replace("`", '"'))
    except ValueError:
        raise invalid(f"Invalid order_by clause '{order_by}'. Could not be parsed.") from None
    if len(tokens) > 2:
        raise invalid(f"Invalid order_by clause '{order_by}'. Could not be parsed.")
    ascending = True
    if len(tokens) == 2:
        order = tokens[1].lower()
        if order not in ("asc", "desc"):
            raise invalid(f"Invalid ordering key in order_by clause '{order_by}'.")
        ascending = order == "asc"
        token_value = tokens[0]
    return token_value, ascending


def parse_run_order_by(order_by_list: list[str] | None) -> list[tuple[str, str, bool]]:
    """(kind, translated key, ascending) per clause, as ``_get_orderby_clauses`` reads them."""
    out: list[tuple[str, str, bool]] = []
    seen: set[tuple[str, str]] = set()
    for clause in order_by_list or []:
        token_value, ascending = _parse(clause)
        ident = run_identifier(token_value.strip(), RUN_ORDER_BY_ATTRIBUTES)
        kind, key = ident["type"], translate_key_alias(ident["key"])
        if kind not in (ATTRIBUTE, METRIC, PARAM, TAG):
            raise invalid(f"Invalid identifier type '{kind}'")
        if (kind, key) in seen:
            # MLflow raises this one without an error code (INTERNAL_ERROR).
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by_list}")
        seen.add((kind, key))
        out.append((kind, key, ascending))
    return out


def parse_experiment_order_by(order_by_list: list[str] | None) -> list[tuple[str, bool]]:
    """(attribute, ascending) per clause, with MLflow's default and experiment_id tie-breaker."""
    out: list[tuple[str, bool]] = []
    for clause in order_by_list or ["creation_time DESC", "experiment_id ASC"]:
        token_value, ascending = _parse(clause)
        ident = experiment_identifier(token_value.strip(), EXPERIMENT_ATTRIBUTES)
        if ident["type"] != ATTRIBUTE:
            raise invalid(f"Invalid order_by entity: {ident['type']}")
        out.append((ident["key"], ascending))
    if not any(key == "experiment_id" for key, _ in out):
        out.append(("experiment_id", False))
    return out
