"""What the grader runs: the submission's cells with the *source's* check cells put back, and
every check statement instrumented so its outcome reaches the grader, not a file or a record
the notebook could write.

**Check cells.** A source cell is a check cell when it is a hidden check (``# HIDDEN CHECK``
or the ``hidden-check`` tag) or declares a check (``check("name", points=N)`` /
``lab.check(...)`` with literal arguments). ``restore_checks`` drops every submission cell
that carries one (the same cell id, a check name of the source, the same text, or a hidden
check marker: edited, moved, duplicated and forged copies alike) and inserts a fresh copy of
each source check cell after the source cell just before it, when the submission still has that
cell (else before the next source cell it still has, else at the end).

**Instrumentation.** ``instrument`` rewrites each ``with check(...):`` body and each
``@check(...)`` function so that, when the body finishes, fails, or raises
``NotOnRealServer``, it displays one of three random tokens under ``MARK_MIMETYPE``. The
tokens are made per run, live only in the grader and in the code it sends for that one cell,
and are stripped from the saved outputs: output produced earlier, a file, a forged
``application/vnd.lab.check+json`` record or a patched ``lab.check`` cannot produce them.
(Code that inspects the running cell's frames could: see docs/grading.md, trust model.)
"""

from __future__ import annotations

import ast
import copy
import secrets
from dataclasses import dataclass, field

import nbformat

from .assign import BEGIN_MARKER, END_MARKER
from .checks import is_hidden_check_cell

MARK_MIMETYPE = "application/vnd.lab.grader+json"
PASS, FAIL, SKIP = "passed", "failed", "skipped"


class SourceError(ValueError):
    """The source notebook declares a check the grader cannot score; says which and why."""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    points: float
    hint: str | None
    cell_id: str | None


@dataclass
class CheckCell:
    """One source check cell as the grader sends it: the code and what its tokens mean."""

    cell_id: str
    code: str
    marks: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (name, outcome)


def _code(cell) -> str:
    # IPython magics and shell lines are not Python; blank them so the rest parses.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in cell.get("source", "").splitlines())


def _parse(cell) -> ast.Module | None:
    if cell.get("cell_type") != "code":
        return None
    try:
        return ast.parse(_code(cell))
    except SyntaxError:
        return None


def is_check_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return ((isinstance(func, ast.Name) and func.id == "check")
            or (isinstance(func, ast.Attribute) and func.attr == "check"))


def _literal(node: ast.Call, position: int, keyword: str, default=None):
    if len(node.args) > position:
        value = node.args[position]
    else:
        value = next((kw.value for kw in node.keywords if kw.arg == keyword), None)
        if value is None:
            return default, True
    if isinstance(value, ast.Constant):
        return value.value, True
    return None, False


def _spec(node: ast.Call, cell_id: str | None) -> CheckSpec | None:
    """The check a call declares, or None when its name or points are not literals."""
    name, ok_name = _literal(node, 0, "name")
    points, ok_points = _literal(node, 1, "points", 1)
    hint, ok_hint = _literal(node, 2, "hint")
    if not (ok_name and isinstance(name, str) and name.strip() and ok_points
            and isinstance(points, (int, float)) and not isinstance(points, bool)):
        return None
    return CheckSpec(name.strip(), float(points), hint if ok_hint and isinstance(hint, str)
                     else None, cell_id)


def check_specs(nb, *, strict: bool = False) -> dict[str, CheckSpec]:
    """Every check the notebook declares with literal arguments, in order.

    ``strict`` (used for the source) raises on a check whose name or points are not
    literals, because the grader could neither list nor score it.
    """
    found: dict[str, CheckSpec] = {}
    for cell in nb.cells:
        tree = _parse(cell)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if not is_check_call(node):
                continue
            spec = _spec(node, cell.get("id"))
            if spec is None:
                if strict:
                    raise SourceError(f"cell {cell.get('id')}: {ast.unparse(node)[:80]} needs a "
                                      "literal name and literal points")
                continue
            found[spec.name] = spec
    return found


def is_check_cell(cell) -> bool:
    if is_hidden_check_cell(cell):
        return True
    tree = _parse(cell)
    return tree is not None and any(is_check_call(n) for n in ast.walk(tree))


def _carries_check(cell, ids: set, names: set[str], texts: set[str]) -> bool:
    if cell.get("id") in ids or is_hidden_check_cell(cell):
        return True
    if cell.get("cell_type") != "code":
        return False
    if cell.get("source", "").strip() in texts:
        return True
    tree = _parse(cell)
    if tree is None:
        return False
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str)
               and n.value.strip() in names for n in ast.walk(tree))


def restore_checks(submission, source) -> tuple[nbformat.NotebookNode, list[str]]:
    """The submission with the source's check cells, and a note per dropped cell."""
    source_checks = [c for c in source.cells if is_check_cell(c)]
    ids = {c.get("id") for c in source_checks if c.get("id")}
    names = set(check_specs(source))
    texts = {c.get("source", "").strip() for c in source_checks}
    original = {c.get("id"): c.get("source", "").strip() for c in source_checks}
    nb = copy.deepcopy(submission)
    kept, dropped, seen = [], [], set()
    for index, cell in enumerate(nb.cells):
        if not _carries_check(cell, ids, names, texts):
            kept.append(cell)
            continue
        untouched = (original.get(cell.get("id")) == cell.get("source", "").strip()
                     and cell.get("id") not in seen)
        seen.add(cell.get("id"))
        if not untouched:  # edited, moved in as a forgery, duplicated or made up
            dropped.append(f"cell {index} (id {cell.get('id')}): carries a check of the "
                           "source but is not the source's cell; replaced by it")
    nb.cells = kept
    for position, cell in enumerate(source.cells):
        if cell not in source_checks:
            continue
        present = [c.get("id") for c in nb.cells]
        index = None
        earlier = source.cells[position - 1] if position else None
        if earlier is not None and earlier.get("id") in present:
            index = present.index(earlier.get("id")) + 1
        else:
            for later in source.cells[position + 1:]:
                if later not in source_checks and later.get("id") in present:
                    index = present.index(later.get("id"))
                    break
        fresh = copy.deepcopy(cell)
        fresh.outputs, fresh.execution_count = [], None
        if not fresh.get("id"):
            fresh["id"] = f"lab-check-{position}"
        nb.cells.insert(len(nb.cells) if index is None else index, fresh)
    return nb, dropped


def validate_source(source) -> dict[str, CheckSpec]:
    """The source's checks; SourceError when a check cell could leak a solution or cannot
    be instrumented."""
    specs = check_specs(source, strict=True)
    for cell in source.cells:
        if not is_check_cell(cell):
            continue
        text = cell.get("source", "")
        if BEGIN_MARKER in text or END_MARKER in text:
            raise SourceError(f"cell {cell.get('id')} is a check cell with a solution block: "
                              "the grader puts check cells back as they are, so move the "
                              "task code into a cell of its own")
        instrument(cell)
    return specs


# -- instrumentation --------------------------------------------------------------------

_IMPORT_DISPLAY = '__import__("IPython.display", fromlist=["display"]).display'
_NOT_ON_REAL = ('__import__("lab_support.client", fromlist=["NotOnRealServer"])'
                '.NotOnRealServer')


def _emit(token: str, reason: bool = False, skip_token: str | None = None) -> list[ast.stmt]:
    if not reason:
        text = f'{_IMPORT_DISPLAY}({{"{MARK_MIMETYPE}": {{"token": "{token}"}}}}, raw=True)'
    else:
        chosen = (f'("{skip_token}" if isinstance(_lab_grader_exc, {_NOT_ON_REAL}) '
                  f'else "{token}")')
        text = (f'{_IMPORT_DISPLAY}({{"{MARK_MIMETYPE}": {{"token": {chosen}, "reason": '
                '(type(_lab_grader_exc).__name__ + ": " + str(_lab_grader_exc))[:1000]}}, '
                'raw=True)')
    return ast.parse(text).body


class _Instrument(ast.NodeTransformer):
    def __init__(self, cell_id: str) -> None:
        self.cell = CheckCell(cell_id, "")
        self.done: set[int] = set()

    def _tokens(self, call: ast.Call) -> tuple[str, str, str]:
        spec = _spec(call, self.cell.cell_id)
        if spec is None:
            raise SourceError(f"cell {self.cell.cell_id}: {ast.unparse(call)[:80]} needs a "
                              "literal name and literal points")
        tokens = tuple(secrets.token_hex(16) for _ in range(3))
        for token, outcome in zip(tokens, (PASS, FAIL, SKIP)):
            self.cell.marks[token] = (spec.name, outcome)
        self.done.add(id(call))
        return tokens

    def _guarded(self, body: list[ast.stmt], tokens) -> ast.Try:
        ok, bad, skipped = tokens
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()),
                                    name="_lab_grader_exc",
                                    body=[*_emit(bad, reason=True, skip_token=skipped),
                                          ast.Raise()])
        return ast.Try(body=body, handlers=[handler], orelse=_emit(ok), finalbody=[])

    def visit_With(self, node):
        self.generic_visit(node)
        calls = [item.context_expr for item in node.items if is_check_call(item.context_expr)]
        if calls:
            node.body = [self._guarded(node.body, self._tokens(calls[0]))]
        return node

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        calls = [d for d in node.decorator_list if is_check_call(d)]
        if not calls:
            return node
        tokens = self._tokens(calls[0])
        if node.args.args or node.args.posonlyargs or node.args.kwonlyargs \
                or node.args.vararg or node.args.kwarg:
            raise SourceError(f"cell {self.cell.cell_id}: @check function {node.name} must "
                              "take no arguments")
        is_async = isinstance(node, ast.AsyncFunctionDef)
        inner_cls = ast.AsyncFunctionDef if is_async else ast.FunctionDef
        inner = inner_cls(name="_lab_grader_body", args=node.args, body=node.body,
                          decorator_list=[], returns=None, type_comment=None, type_params=[])
        call = ast.Call(ast.Name("_lab_grader_body", ast.Load()), [], [])
        value = ast.Await(call) if is_async else call
        run = ast.Assign([ast.Name("_lab_grader_result", ast.Store())], value)
        guarded = self._guarded([run], tokens)
        result = ast.Return(ast.Name("_lab_grader_result", ast.Load()))
        guarded.orelse.append(result)
        node.body = [inner, guarded]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef


def instrument(cell) -> CheckCell:
    """The code the grader sends for one source check cell, with fresh tokens."""
    cell_id = cell.get("id") or "check"
    try:
        tree = ast.parse(cell.get("source", ""))
    except SyntaxError as exc:
        if not any(is_check_call(n) for n in ast.walk(_parse(cell) or ast.Module([], []))):
            return CheckCell(cell_id, cell.get("source", ""))
        raise SourceError(f"cell {cell_id}: a check cell must be plain Python ({exc})") from exc
    calls = [n for n in ast.walk(tree) if is_check_call(n)]
    worker = _Instrument(cell_id)
    tree = ast.fix_missing_locations(worker.visit(tree))
    stray = [c for c in calls if id(c) not in worker.done]
    if stray:
        raise SourceError(f"cell {cell_id}: write {ast.unparse(stray[0])[:60]} as "
                          "`with lab.check(...):` or `@lab.check(...)` on a function")
    worker.cell.code = ast.unparse(tree) if calls else cell.get("source", "")
    return worker.cell
