"""Parse a formula's text into the AST of :mod:`sandbox.salesforce.formula.ast`.

``parse`` raises :class:`FormulaError`, with a message in the words of Salesforce's formula
editor, for text that is not a formula.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from connector.errors import ConnectorError
from sandbox.salesforce.formula import ast


class FormulaError(ConnectorError):
    """A formula the sandbox cannot compute: not a formula, or one that uses a function, a
    field or a type the way Salesforce would refuse (the schema does not load)."""


@lru_cache(maxsize=256)
def parse(text: str) -> ast.Node:
    """Parse one formula; raise FormulaError if it is not one."""
    try:
        return cast(ast.Node, _PARSER.parse(text))
    except UnexpectedToken as error:
        if error.token.type == "$END":
            missing = "')'" if "RPAR" in error.expected else "an operand at the end"
            raise FormulaError(f"Syntax error. Missing {missing}") from error
        raise FormulaError(f"Syntax error. Found '{error.token}'") from error
    except UnexpectedCharacters as error:
        raise FormulaError(f"Syntax error. Found '{error.char}'") from error
    except UnexpectedInput as error:  # pragma: no cover - LALR raises only the two above
        raise FormulaError("Syntax error.") from error


_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_OPERATORS = {"==": "=", "<>": "!="}
_LITERAL_NAMES: dict[str, bool | None] = {"TRUE": True, "FALSE": False, "NULL": None}


def _string(token: Token) -> str:
    body, parts, start = token[1:-1], [], 0
    while (slash := body.find("\\", start)) >= 0:
        char = body[slash + 1]  # the grammar guarantees a character after a backslash
        if char not in _ESCAPES:
            raise FormulaError(f"Syntax error. Invalid escape sequence '\\{char}'")
        parts += [body[start:slash], _ESCAPES[char]]
        start = slash + 2
    parts.append(body[start:])
    return "".join(parts)


class _ToAst(Transformer[Token, ast.Node]):
    """Builds the AST while the LALR parser reduces (see grammar.lark)."""

    def number(self, children: list[Token]) -> ast.Literal:
        return ast.Literal(Decimal(children[0]))

    def string(self, children: list[Token]) -> ast.Literal:
        return ast.Literal(_string(children[0]))

    def name(self, children: list[Token]) -> ast.Literal | ast.Name:
        if len(children) == 1 and children[0].upper() in _LITERAL_NAMES:
            return ast.Literal(_LITERAL_NAMES[children[0].upper()])
        return ast.Name(tuple(str(part) for part in children))

    def call(self, children: list[Any]) -> ast.Call:
        name, *args = children
        return ast.Call(str(name), tuple(arg for arg in args if arg is not None))

    def binary(self, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(_OPERATORS.get(str(op), str(op)), left, right)

    def negate(self, children: list[Any]) -> ast.Negate:
        return ast.Negate(children[1])


_GRAMMAR = files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", transformer=_ToAst(), start="start")
