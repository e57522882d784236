"""A small SQL lexer and grouper that reads filter strings the way sqlparse 0.5 does for MLflow.

MLflow parses filters with sqlparse and then inspects its token tree; the error messages quote
those tokens. This module reproduces the part of sqlparse's lexing and grouping that MLflow's
filter language reaches (identifiers with dots, backquotes and double quotes, numbers, quoted
strings, comparison operators, LIKE/ILIKE, IN, IS [NOT] NULL, parentheses, AND), so that
asynctrack answers with the same clauses and the same messages, without the dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Token kinds.
WS = "ws"
NAME = "name"  # bare word, `backquoted` word
SYMBOL = "symbol"  # "double quoted"
STRING = "string"  # 'single quoted'
INT = "int"
FLOAT = "float"
HEX = "hex"
KEYWORD = "keyword"
ORDER = "order"  # ASC / DESC
COMPARISON = "comparison"
PUNCT = "punct"
OPERATOR = "operator"
WILDCARD = "wildcard"
OTHER = "other"
# Groups.
IDENTIFIER = "identifier"
IDENTIFIER_LIST = "identifier_list"
OPERATION = "operation"
FUNCTION = "function"
PAREN = "paren"
COMPARISON_GROUP = "comparison_group"

NUMERIC = (INT, FLOAT)

_LETTER = "A-Za-zÀ-Üà-ü"
_RULES: list[tuple[str, str]] = [
    (r"\s+", WS),
    (r"\*", WILDCARD),
    (r"`(``|[^`])*`", NAME),
    (r"(CASE|IN|VALUES|USING|FROM|AS)\b", KEYWORD),
    (rf"[{_LETTER}]\w*(?=\s*\.(?!\d))", NAME),
    (rf"(?<=\.)[{_LETTER}]\w*", NAME),
    (rf"[{_LETTER}]\w*(?=\()", NAME),
    (r"-?0x[\dA-Fa-f]+", HEX),
    (r"-?\d+(\.\d+)?[Ee]-?\d+", FLOAT),
    (rf"(?![_{_LETTER}])-?(\d+(\.\d*)|\.\d+)(?![_{_LETTER}])", FLOAT),
    (rf"(?![_{_LETTER}])-?\d+(?![_{_LETTER}])", INT),
    (r"'(''|\\'|[^'])*'", STRING),
    (r'"(""|\\"|[^"])*"', SYMBOL),
    (r"NOT\s+NULL\b", KEYWORD),
    (r"(ASC|DESC)(\s+NULLS\s+(FIRST|LAST))?\b", ORDER),
    (r"(NOT\s+)?(LIKE|ILIKE|RLIKE)\b", COMPARISON),
    (r"(NOT\s+)?(REGEXP)(\s+(BINARY))?\b", COMPARISON),
    (r"\w[$#\w]*", "word"),
    (r"[;:()\[\],.]", PUNCT),
    (r"(\->>?|#>>?|@>|<@|\?\|?|\?&|\-|#\-)", OPERATOR),
    (r"[<>=~!]+", COMPARISON),
    (r"[+/@#%^&|^-]+", OPERATOR),
]
_LEXER = re.compile("|".join(f"(?P<g{i}>{rx})" for i, (rx, _) in enumerate(_RULES)), re.I | re.U)
_KINDS = {f"g{i}": kind for i, (_, kind) in enumerate(_RULES)}

# The words of sqlparse's keyword tables that a filter can plausibly contain: a bare word that is a
# keyword is not an identifier (so "key = 'x'" is not a comparison).
_KEYWORDS = frozenset(
    """AND OR NOT IS NULL TRUE FALSE IN BETWEEN EXISTS SELECT FROM WHERE LIMIT OFFSET ORDER BY
    GROUP HAVING UNION ALL ANY SOME DISTINCT CASE WHEN THEN ELSE END AS ON JOIN KEY TIME LEVEL
    COUNT MIN MAX SUM AVG USER TABLE INDEX VALUES SET UPDATE DELETE INSERT INTO CREATE DROP
    ALTER WITH ESCAPE DEFAULT CAST COLUMN PRIMARY FOREIGN REFERENCES CHECK UNIQUE""".split()
)


@dataclass
class Tok:
    kind: str
    value: str
    children: list[Tok] = field(default_factory=list)

    def __str__(self) -> str:
        return self.value

    @property
    def is_whitespace(self) -> bool:
        return self.kind == WS

    def is_keyword(self, *values: str) -> bool:
        return self.kind == KEYWORD and self.value.upper() in values


def lex(text: str) -> list[Tok]:
    """Flat tokens, as sqlparse's lexer gives them (unknown characters become OTHER)."""
    out: list[Tok] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _LEXER.match(text, pos)
        if m is None or m.end() == pos:
            out.append(Tok(OTHER, text[pos]))
            pos += 1
            continue
        kind = _KINDS[m.lastgroup]
        value = m.group()
        if kind == "word":
            kind = KEYWORD if value.upper() in _KEYWORDS else NAME
        out.append(Tok(kind, value))
        pos = m.end()
    return out


def split_statements(tokens: list[Tok]) -> list[list[Tok]]:
    """sqlparse's statement splitting: at ';' outside parentheses; empty trailing ones dropped."""
    statements: list[list[Tok]] = [[]]
    depth = 0
    for tok in tokens:
        statements[-1].append(tok)
        if tok.kind == PUNCT and tok.value == "(":
            depth += 1
        elif tok.kind == PUNCT and tok.value == ")":
            depth = max(depth - 1, 0)
        elif tok.kind == PUNCT and tok.value == ";" and depth == 0:
            statements.append([])
    return [s for s in statements if any(not t.is_whitespace for t in s)]


def _join(tokens: list[Tok], kind: str) -> Tok:
    return Tok(kind, "".join(t.value for t in tokens), tokens)


def _group_parens(tokens: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    stack: list[list[Tok]] = []
    for tok in tokens:
        if tok.kind == PUNCT and tok.value == "(":
            stack.append([tok])
        elif tok.kind == PUNCT and tok.value == ")" and stack:
            group = stack.pop()
            group.append(tok)
            paren = _join(group, PAREN)
            (stack[-1] if stack else out).append(paren)
        else:
            (stack[-1] if stack else out).append(tok)
    while stack:  # unbalanced: leave the pieces flat
        out.extend(stack.pop(0))
    return out


def _next(tokens: list[Tok], i: int) -> int | None:
    """Index of the first non-whitespace token after ``i``."""
    for j in range(i + 1, len(tokens)):
        if not tokens[j].is_whitespace:
            return j
    return None


def _merge(parts: list[Tok], kind: str, extend: bool) -> Tok:
    """sqlparse's ``group_tokens``: extend the first token if it is already a ``kind`` group."""
    first = parts[0]
    if extend and first.kind == kind:
        rest = parts[1:]
        return Tok(kind, first.value + "".join(t.value for t in rest), first.children + rest)
    return _join(parts, kind)


def _group_binary(tokens, kind, match, valid_prev, valid_next, include_next, extend) -> list[Tok]:
    """sqlparse's ``_group``: ``prev <match> next`` becomes one ``kind`` group, left to right."""
    out: list[Tok] = []
    prev_i: int | None = None  # index in out of the previous non-whitespace token
    prev_tok: Tok | None = None  # that token, or the last operand of the group it ended up in
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.is_whitespace:
            out.append(tok)
            i += 1
            continue
        if match(tok) and prev_tok is not None and valid_prev(prev_tok):
            ni = _next(tokens, i)
            nxt = tokens[ni] if ni is not None else None
            if valid_next(nxt):
                end = ni if (nxt is not None and include_next(nxt)) else i
                parts = out[prev_i:] + tokens[i : end + 1]
                del out[prev_i:]
                out.append(_merge(parts, kind, extend))
                # as sqlparse: the group, or (when it took the next token) that token, is the
                # previous token for the next match
                prev_i, prev_tok = len(out) - 1, (tokens[end] if end != i else out[-1])
                i = end + 1
                continue
        out.append(tok)
        prev_i, prev_tok = len(out) - 1, tok
        i += 1
    return out


def _group_functions(tokens: list[Tok]) -> list[Tok]:
    """A name followed by a parenthesis (whitespace between allowed) is a function call."""
    out = list(tokens)
    i = 0
    while i < len(out):
        if out[i].kind == NAME:
            ni = _next(out, i)
            if ni is not None and out[ni].kind == PAREN:
                out[i : ni + 1] = [_join(out[i : ni + 1], FUNCTION)]
        i += 1
    return out


def _group_periods(tokens: list[Tok]) -> list[Tok]:
    return _group_binary(
        tokens,
        IDENTIFIER,
        match=lambda t: t.kind == PUNCT and t.value == ".",
        valid_prev=lambda t: t.kind in (IDENTIFIER, NAME, SYMBOL),
        valid_next=lambda t: True,
        include_next=lambda t: t.kind in (FUNCTION, NAME, SYMBOL, STRING, WILDCARD),
        extend=True,
    )


def _group_identifiers(tokens: list[Tok]) -> list[Tok]:
    return [Tok(IDENTIFIER, t.value, [t]) if t.kind in (NAME, SYMBOL) else t for t in tokens]


def _group_order(tokens: list[Tok]) -> list[Tok]:
    """``x DESC`` (x an identifier or a number) is one identifier."""
    out = list(tokens)
    i = 0
    while i < len(out):
        if out[i].kind == ORDER:
            pi = i - 1
            while pi >= 0 and out[pi].is_whitespace:
                pi -= 1
            if pi >= 0 and out[pi].kind in (IDENTIFIER, INT, FLOAT, HEX):
                out[pi : i + 1] = [_join(out[pi : i + 1], IDENTIFIER)]
                i = pi
        i += 1
    return out


_OPERATION_OPERANDS = (PAREN, FUNCTION, IDENTIFIER, OPERATION, INT, FLOAT, STRING, NAME, SYMBOL)


def _group_operations(tokens: list[Tok]) -> list[Tok]:
    ok = lambda t: t is not None and t.kind in _OPERATION_OPERANDS  # noqa: E731
    return _group_binary(
        tokens,
        OPERATION,
        match=lambda t: t.kind in (OPERATOR, WILDCARD),
        valid_prev=ok,
        valid_next=ok,
        include_next=lambda t: True,
        extend=False,
    )


def _is_operand(t: Tok | None) -> bool:
    if t is None:
        return False
    return t.kind in (PAREN, FUNCTION, IDENTIFIER, OPERATION, INT, FLOAT, STRING, NAME, SYMBOL) or (
        t.kind == KEYWORD and t.value.upper() == "NULL"
    )


def _group_comparisons(tokens: list[Tok]) -> list[Tok]:
    return _group_binary(
        tokens,
        COMPARISON_GROUP,
        match=lambda t: t.kind == COMPARISON,
        valid_prev=_is_operand,
        valid_next=_is_operand,
        include_next=lambda t: True,
        extend=False,
    )


def _group_aliases(tokens: list[Tok]) -> list[Tok]:
    """``x y`` where y is an identifier: y is x's alias, and the pair one identifier."""
    out = list(tokens)
    i = 0
    while i < len(out):
        if out[i].kind in (PAREN, FUNCTION, IDENTIFIER, OPERATION, COMPARISON_GROUP, INT, FLOAT, HEX):
            ni = _next(out, i)
            if ni is not None and out[ni].kind == IDENTIFIER:
                out[i : ni + 1] = [_merge(out[i : ni + 1], IDENTIFIER, extend=True)]
        i += 1
    return out


def _group_identifier_lists(tokens: list[Tok]) -> list[Tok]:
    valid = (FUNCTION, IDENTIFIER, COMPARISON_GROUP, IDENTIFIER_LIST, OPERATION, INT, FLOAT,
             STRING, NAME, SYMBOL, KEYWORD, WILDCARD)
    return _group_binary(
        tokens,
        IDENTIFIER_LIST,
        match=lambda t: t.kind == PUNCT and t.value == ",",
        valid_prev=lambda t: t is not None and t.kind in valid,
        valid_next=lambda t: t is not None and t.kind in valid,
        include_next=lambda t: True,
        extend=True,
    )


def group(tokens: list[Tok]) -> list[Tok]:
    """One statement's tokens, grouped in sqlparse's order: parentheses, functions, dotted
    names, identifiers, ASC/DESC, arithmetic, comparisons, aliases, comma lists."""
    tokens = _group_parens(tokens)
    tokens = _group_functions(tokens)
    tokens = _group_periods(tokens)
    tokens = _group_identifiers(tokens)
    tokens = _group_order(tokens)
    tokens = _group_operations(tokens)
    tokens = _group_comparisons(tokens)
    tokens = _group_aliases(tokens)
    return _group_identifier_lists(tokens)


def join_in_comparisons(tokens: list[Tok]) -> list[Tok]:
    """MLflow's ``_join_in_comparison_tokens``: IN, NOT IN, IS NULL, IS NOT NULL clauses."""
    toks = [t for t in tokens if not t.is_whitespace]
    out: list[Tok] = []
    n = len(toks)
    i = 0
    while i < n:
        if n - i < 3:
            out.extend(toks[i:])
            break
        first = toks[i]
        if first.kind != IDENTIFIER:
            out.append(first)
            i += 1
            continue
        second, third = toks[i + 1], toks[i + 2]
        if second.is_keyword("IN") and third.kind == PAREN:
            out.append(Tok(COMPARISON_GROUP, "", [first, second, third]))
            i += 3
            continue
        if second.is_keyword("IS") and third.is_keyword("NULL"):
            out.append(Tok(COMPARISON_GROUP, "", [first, Tok(KEYWORD, "IS NULL")]))
            i += 3
            continue
        if second.is_keyword("IS") and third.kind == KEYWORD and third.value.upper() == "NOT NULL":
            out.append(Tok(COMPARISON_GROUP, "", [first, Tok(KEYWORD, "IS NOT NULL")]))
            i += 3
            continue
        if i + 3 >= n:
            out.extend([first, second, third])
            break
        fourth = toks[i + 3]
        if second.is_keyword("NOT") and third.is_keyword("IN") and fourth.kind == PAREN:
            out.append(Tok(COMPARISON_GROUP, "", [first, Tok(KEYWORD, "NOT IN"), fourth]))
            i += 4
            continue
        out.extend([first, second, third, fourth])
        i += 4
    for tok in out:
        if tok.kind == COMPARISON_GROUP and not tok.value:
            tok.value = " ".join(t.value for t in tok.children)
    return out
