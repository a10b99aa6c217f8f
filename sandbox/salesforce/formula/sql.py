"""Translate formulas to SQLite expressions over a record's row, checked when the schema loads.

Each formula field of an object becomes a :class:`Formula`: the kind of value it gives and a
function that writes its SQL for one place (the row's table alias, as ``column`` makes the
record's fields) and one day (``TODAY()``, the org's date). The org selects that SQL where the
field is read, so a formula is computed on every read and never stored.

The translator knows the functions and operators the connector's formulas use, with
Salesforce's types and Salesforce's messages for what it refuses (an unknown function or field,
a wrong number or type of parameters, a picklist outside ISPICKVAL and ISBLANK):

- ``IF(test, then, else)``, ``AND(a, b, ...)``, ``OR(a, b, ...)``, ``NOT(a)``, ``ISBLANK(x)``,
  ``ISPICKVAL(picklist_field, "text")``, ``BLANKVALUE(x, substitute)``, ``TODAY()``;
- ``= == != <> < <= > >=`` on two values of one type (text compares case-sensitively);
- ``+ - * /`` and unary ``-`` on numbers; a date plus or minus a number of days, the days between
  two dates (``TODAY() - Due_Date__c``), and the same for datetimes.

Blank number fields read as 0 where the field's ``blanks`` is ``zero`` (the metadata's
``formulaTreatBlanksAs`` ``BlankAsZero``, the default), so ISBLANK of one is false, as in
Salesforce. A comparison with a blank value is false. The result is rounded to the field's
scale; a formula checkbox is never null.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sandbox.salesforce.formula import ast
from sandbox.salesforce.formula.parser import FormulaError, parse
from sandbox.salesforce.formula.values import (
    BOOLEAN,
    DATE,
    DATETIME,
    NULL,
    NUMBER,
    PICKLIST,
    TEXT,
    Env,
    Expr,
    Render,
    UntranslatableError,
    arithmetic,
    comparison,
    literal,
    operator_type,
    parameter_type,
    same,
    text_literal,
)

if TYPE_CHECKING:
    from sandbox.salesforce.schema import Field, SObject


@dataclass(frozen=True)
class Formula:
    """A formula field, translated: the kind of value it gives and its SQL."""

    field: str
    text: str
    kind: str
    render: Render

    def sql(self, column: Callable[[str], str], today: date) -> str:
        """The field's value for the row whose fields ``column`` names, on ``today``."""
        return self.render(Env(column, text_literal(today.isoformat())))


def kind_of(spec: Field) -> str:
    if spec.is_number:
        return NUMBER
    return {"picklist": PICKLIST, "date": DATE, "datetime": DATETIME, "boolean": BOOLEAN}.get(
        spec.type, TEXT
    )


def compile_formulas(obj: SObject) -> dict[str, Formula]:
    """Every formula field of ``obj``, translated; FormulaError names the first that cannot
    be (a formula may read another formula field of the object, but not itself in a circle)."""
    done: dict[str, Formula] = {}
    busy: list[str] = []

    def compile_field(spec: Field) -> Formula:
        if spec.name in done:
            return done[spec.name]
        if spec.name in busy:
            circle = " -> ".join([*busy[busy.index(spec.name) :], spec.name])
            raise FormulaError(f"{obj.name}.{busy[0]}: circular reference: {circle}")
        busy.append(spec.name)
        try:
            done[spec.name] = _Translator(obj, spec, compile_field).formula()
        except UntranslatableError as refused:
            raise FormulaError(f"{obj.name}.{spec.name}: {refused}") from None
        finally:
            busy.pop()
        return done[spec.name]

    for spec in obj.fields.values():
        if spec.spec.formula is not None:
            compile_field(spec)
    return done


class _Translator:
    """Translates the formula of one field of ``obj``."""

    def __init__(
        self, obj: SObject, spec: Field, compile_field: Callable[[Field], Formula]
    ) -> None:
        self.obj = obj
        self.spec = spec
        self.compile_field = compile_field
        self.blanks_as_zero = (spec.spec.blanks or "zero") == "zero"
        self.functions: dict[str, Callable[[str, tuple[ast.Node, ...]], Expr]] = {
            "IF": self._if,
            "AND": self._logical,
            "OR": self._logical,
            "NOT": self._not,
            "ISBLANK": self._isblank,
            "ISPICKVAL": self._ispickval,
            "BLANKVALUE": self._blankvalue,
            "TODAY": self._today,
        }

    def formula(self) -> Formula:
        text = self.spec.spec.formula or ""
        try:
            tree = parse(text)
        except FormulaError as error:
            raise UntranslatableError(str(error)) from None
        expected = kind_of(self.spec)
        if expected == PICKLIST or self.spec.type in ("id", "reference"):
            raise UntranslatableError(f"a formula field cannot be of type {self.spec.type}")
        result = self.value(tree)
        if result.kind not in (expected, NULL):
            raise UntranslatableError(
                f"Formula result is data type ({result.kind}), incompatible with expected data "
                f"type ({expected})."
            )
        return Formula(self.spec.name, text, expected, self._result(result.render))

    def _result(self, render: Render) -> Render:
        """The value as the field keeps it: rounded to its scale; a checkbox never null."""
        spec = self.spec
        if spec.type == "int":
            return lambda env: f"CAST(ROUND({render(env)}) AS INTEGER)"
        if spec.is_number:
            return lambda env: f"CAST(ROUND({render(env)}, {spec.scale}) AS REAL)"
        if spec.type == "boolean":
            return lambda env: f"COALESCE({render(env)}, 0)"
        return render

    # -- values ----------------------------------------------------------------------------
    def value(self, node: ast.Node) -> Expr:
        """A value anywhere but in ISPICKVAL and ISBLANK: a picklist field is refused."""
        expr = self.expr(node)
        if expr.kind == PICKLIST:
            name = node.text if isinstance(node, ast.Name) else "?"
            raise UntranslatableError(
                f"Field {name} is a picklist field. Picklist fields are only supported in "
                "certain functions."
            )
        return expr

    def expr(self, node: ast.Node) -> Expr:
        if isinstance(node, ast.Literal):
            return literal(node.value)
        if isinstance(node, ast.Name):
            return self._field(node)
        if isinstance(node, ast.Call):
            function = self.functions.get(node.name.upper())
            if function is None:
                raise UntranslatableError(f"Unknown function {node.name.upper()}. Check spelling.")
            return function(node.name.upper(), node.args)
        if isinstance(node, ast.Negate):
            operand = self.value(node.operand)
            if operand.kind != NUMBER:
                raise operator_type("-", NUMBER, operand.kind)
            return Expr(NUMBER, lambda env: f"(-{operand.render(env)})")
        if node.op in ("+", "-", "*", "/"):
            return arithmetic(node.op, self.value(node.left), self.value(node.right))
        return comparison(node.op, self.value(node.left), self.value(node.right))

    def _field(self, node: ast.Name) -> Expr:
        if len(node.path) > 1:
            raise UntranslatableError(
                f"Field {node.text}: fields of other objects are not supported by the sandbox"
            )
        spec = self.obj.field(node.path[0])
        if spec is None:
            raise UntranslatableError(f"Field {node.text} does not exist. Check spelling.")
        if spec.spec.formula is not None:
            formula = self.compile_field(spec)
            return Expr(formula.kind, formula.render)
        kind, name = kind_of(spec), spec.name
        if kind == NUMBER and self.blanks_as_zero:
            return Expr(kind, lambda env: f"COALESCE({env.column(name)}, 0)")
        return Expr(kind, lambda env: env.column(name))

    # -- functions -------------------------------------------------------------------------
    @staticmethod
    def _count(function: str, args: tuple[ast.Node, ...], expected: int) -> None:
        if len(args) != expected:
            raise UntranslatableError(
                f"Incorrect number of parameters for function '{function}()'. "
                f"Expected {expected}, received {len(args)}"
            )

    def _boolean(self, function: str, node: ast.Node) -> Expr:
        expr = self.value(node)
        if expr.kind != BOOLEAN:
            raise parameter_type(function, BOOLEAN, expr.kind)
        return expr

    def _if(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        self._count(function, args, 3)
        test = self._boolean(function, args[0])
        then, otherwise = self.value(args[1]), self.value(args[2])
        return Expr(
            same(function, then, otherwise),
            lambda env: (
                f"(CASE WHEN {test.render(env)} THEN {then.render(env)} "
                f"ELSE {otherwise.render(env)} END)"
            ),
        )

    def _logical(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        if not args:
            raise UntranslatableError(
                f"Incorrect number of parameters for function '{function}()'. "
                "Expected 1 or more, received 0"
            )
        items = [self._boolean(function, arg) for arg in args]
        joiner = f" {function} "
        return Expr(BOOLEAN, lambda env: f"({joiner.join(item.render(env) for item in items)})")

    def _not(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        self._count(function, args, 1)
        item = self._boolean(function, args[0])
        return Expr(BOOLEAN, lambda env: f"(NOT {item.render(env)})")

    def _isblank(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        self._count(function, args, 1)
        item = self.expr(args[0])
        return Expr(BOOLEAN, lambda env: f"({item.render(env)} IS NULL)")

    def _ispickval(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        self._count(function, args, 2)
        field, value = self.expr(args[0]), args[1]
        if field.kind != PICKLIST:
            raise parameter_type(function, PICKLIST, field.kind)
        if not isinstance(value, ast.Literal) or not isinstance(value.value, str):
            received = self.expr(value).kind if not isinstance(value, ast.Literal) else "literal"
            raise parameter_type(function, "Text literal", received)
        text = text_literal(value.value)
        return Expr(
            BOOLEAN, lambda env: f"COALESCE({field.render(env)} = {text} COLLATE BINARY, 0)"
        )

    def _blankvalue(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        self._count(function, args, 2)
        item, substitute = self.value(args[0]), self.value(args[1])
        return Expr(
            same(function, item, substitute),
            lambda env: f"COALESCE({item.render(env)}, {substitute.render(env)})",
        )

    def _today(self, function: str, args: tuple[ast.Node, ...]) -> Expr:
        self._count(function, args, 0)
        return Expr(DATE, lambda env: env.today)
