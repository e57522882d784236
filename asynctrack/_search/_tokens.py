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
OTHER = "other"
# Groups.
IDENTIFIER = "identifier"
PAREN = "paren"
COMPARISON_GROUP = "comparison_group"

NUMERIC = (INT, FLOAT)

_LETTER = "A-Za-zÀ-Üà-ü"
_RULES: list[tuple[str, str]] = [
    (r"\s+", WS),
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
    (r"[<>=~!]+", COMPARISON),
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


_NAMEISH = (NAME, SYMBOL)


def _group_identifiers(tokens: list[Tok]) -> list[Tok]:
    """Dotted names (``a.b.`c d```, ``tags."x"``) and lone names become identifiers."""
    out: list[Tok] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind not in _NAMEISH:
            out.append(tok)
            i += 1
            continue
        parts = [tok]
        j = i + 1
        while True:
            k = j
            while k < n and tokens[k].is_whitespace:
                k += 1
            if k < n and tokens[k].kind == PUNCT and tokens[k].value == ".":
                m = k + 1
                if m < n and tokens[m].kind in _NAMEISH + (KEYWORD, STRING):
                    parts.extend(tokens[j : m + 1])
                    j = m + 1
                    continue
                parts.extend(tokens[j : k + 1])  # trailing dot stays in the identifier
                j = k + 1
            break
        out.append(_join(parts, IDENTIFIER))
        i = j
    return out


_OPERAND = (IDENTIFIER, PAREN, INT, FLOAT, STRING)


def _group_comparisons(tokens: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.kind == COMPARISON and out:
            # left operand: the last non-whitespace token
            li = len(out) - 1
            while li >= 0 and out[li].is_whitespace:
                li -= 1
            ri = i + 1
            while ri < n and tokens[ri].is_whitespace:
                ri += 1
            if li >= 0 and ri < n and out[li].kind in _OPERAND and tokens[ri].kind in _OPERAND:
                group = out[li:] + tokens[i : ri + 1]
                del out[li:]
                out.append(_join(group, COMPARISON_GROUP))
                i = ri + 1
                continue
        out.append(tok)
        i += 1
    return out


def group(tokens: list[Tok]) -> list[Tok]:
    """One statement's tokens, grouped: parentheses, identifiers, then comparisons."""
    return _group_comparisons(_group_identifiers(_group_parens(tokens)))


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
