"""The house rules `make lint` checks (ARCHITECTURE.md): an AST pass over src/boxoffice.

  sql           SQL (sqlalchemy statement builders, text(), raw driver calls) only in repository.py
                files, plus the named allow-list below
  transactions  units of work (.begin(), unit_of_work(), run_idempotent*(), .commit()) opened only
                in flows.py files, the request dependency and the machinery named below
  redis-keys    "bo:" key literals only in store.py / shield.py / cache.py
  framework     no web-framework import (fastapi, starlette, uvicorn) in services, rules, stores,
                repositories, flows and the shared machinery
  worker        no module imports the worker but the CLI; jobs.py imports no domain
  cycles        no import cycle among src/boxoffice modules (lazy imports inside functions count;
                `if TYPE_CHECKING:` imports do not), and none among the domain packages once
                their front doors (endpoints.py, dependencies.py) are left out: the domains
                layer (today catalog <- waiting_room <- booking <- payments <- auth)

Prints file:line: rule: message for each violation and exits 1 if there is any.
Usage: python tools/check_house.py [src/boxoffice]
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "boxoffice"
DOMAINS = ("auth", "catalog", "booking", "payments", "waiting_room")
FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
SQL_BUILDERS = {
    "text",
    "select",
    "insert",
    "update",
    "delete",
    "func",
    "literal_column",
    "bindparam",
    "union_all",
}
RAW_DRIVER_CALLS = {"execute", "fetch", "fetchrow", "fetchval", "executemany", "copy_records_to_table"}
TRANSACTION_CALLS = {"unit_of_work", "run_idempotent", "run_idempotent_steps"}
TRANSACTION_METHODS = {"begin", "begin_nested", "commit"}

# Named exceptions (module path relative to src/boxoffice), each with its reason.
SQL_ALLOWED = {
    "db/audit.py": "the audit's read model (SPEC invariants over all tables)",
    "db/outbox.py": "the outbox: written in the caller's transaction, relayed by its job",
    "db/idempotency.py": "the idempotency_keys table is the machinery's own",
    "payments/ledger.py": "the balance ledger's conditional debit/credit",
    "runtime.py": "the readiness probe's SELECT 1",
    "bench/ceilings.py": "raw ceilings measured with the driver directly",
}
TRANSACTIONS_ALLOWED = {
    "db/uow.py": "defines the unit of work",
    "http/deps.py": "the request's unit of work (SessionDep)",
    "db/idempotency.py": "claims, stores and purges keys in its own units of work",
    "db/outbox.py": "the outbox_relay job",
    "ops/demo.py": "the seed-demo CLI command's one unit of work",
    "bench/setup.py": "the bench's data set-up",
    "bench/repository.py": "the bench's pg_stat_statements reset (a savepoint)",
    "bench/runner.py": "the bench's audit and snapshots after a run",
}
REDIS_KEY_MODULES = ("store.py", "shield.py", "cache.py")
REDIS_KEYS_ALLOWED = {
    "db/outbox.py": "the stream names of the outbox relay",
    "bench/ceilings.py": "the raw Redis ceiling's scratch keys",
}
FRAMEWORK_FREE_ROLES = (
    "service.py",
    "rules.py",
    "store.py",
    "shield.py",
    "cache.py",
    "repository.py",
    "flows.py",
    "effects.py",
    "admission.py",
    "layout.py",
    "tokens.py",
    "ledger.py",
    "provider.py",
)
FRAMEWORK_FREE_MODULES = (
    "errors.py",
    "db/uow.py",
    "worker.py",
    "db/outbox.py",
    "db/idempotency.py",
    "kit/ids.py",
    "runtime.py",
    "kit/clock.py",
    "config.py",
    "kit/localcache.py",
    "redis/mux.py",
    "redis/client.py",
    "db/audit.py",
    "mail/smtp.py",
)
FRAMEWORK_ALLOWED = {"payments/simulator.py": "the payment-provider simulator's own app (its own process)"}
# The gRPC front door calls the same flows as HTTP without FastAPI.
FRAMEWORK_FREE_DIRS = ("grpc/",)


_USED: set[tuple[int, str]] = set()


def _allowed(allow_list: dict[str, str], rel: str) -> bool:
    if rel in allow_list:
        _USED.add((id(allow_list), rel))
        return True
    return False


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class Import:
    target: str
    line: int
    names: tuple[str, ...]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = (
                test.id
                if isinstance(test, ast.Name)
                else test.attr
                if isinstance(test, ast.Attribute)
                else ""
            )
            if name == "TYPE_CHECKING":
                for child in node.body:
                    for sub in ast.walk(child):
                        if hasattr(sub, "lineno"):
                            lines.add(sub.lineno)
    return lines


def imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[Import]:
    skip = _type_checking_lines(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno, ())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Import(target, node.lineno, tuple(a.name for a in node.names))


def _call_name(node: ast.Call) -> tuple[str | None, str | None]:
    """(function name, method name) of a call."""
    if isinstance(node.func, ast.Name):
        return node.func.id, None
    if isinstance(node.func, ast.Attribute):
        return None, node.func.attr
    return None, None


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                yield node.lineno, head.value


def check_file(root: Path, path: Path, modules: set[str]) -> tuple[list[Violation], list[tuple[str, int]]]:
    rel = path.relative_to(root).as_posix()
    name = path.name
    module = module_name(root, path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Violation] = []
    edges: list[tuple[str, int]] = []
    sql_names: set[str] = set()
    talks_sql = False  # raw .execute()/.fetch() count only where a database driver is imported
    is_repository = name == "repository.py"

    for imp in imports(tree, module, name == "__init__.py"):
        top = imp.target.split(".")[0]
        if top in ("sqlalchemy", "asyncpg"):
            talks_sql = True
            sql_names |= set(imp.names) & SQL_BUILDERS
        if top in FRAMEWORKS and not _allowed(FRAMEWORK_ALLOWED, rel):
            domain_role = (
                "/" in rel
                and not rel.startswith(("bench/", "web/", "grpc/"))
                and name in FRAMEWORK_FREE_ROLES
            )
            if domain_role or rel in FRAMEWORK_FREE_MODULES or rel.startswith(FRAMEWORK_FREE_DIRS):
                found.append(
                    Violation(path, imp.line, "framework", f"{rel} imports {imp.target} (a web framework)")
                )
        if top != PACKAGE:
            continue
        # Edges: `from pkg import sub` is an edge to the submodule when it is one.
        targets = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in modules]
        if not targets or len(targets) < len(imp.names):
            targets.append(imp.target)
        for target in targets:
            if target in modules and target != module:
                edges.append((target, imp.line))
            if target == f"{PACKAGE}.worker" and rel not in ("cli.py", "ops/up.py"):
                found.append(
                    Violation(path, imp.line, "worker", f"{rel} imports the worker (only the CLI and ops/up.py may)")
                )
            if rel == "jobs.py" and target.split(".")[1:2] and target.split(".")[1] in DOMAINS:
                found.append(
                    Violation(path, imp.line, "worker", f"jobs.py imports the domain module {target}")
                )

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, method = _call_name(node)
        sql = func in sql_names or (talks_sql and method in RAW_DRIVER_CALLS)
        if sql and not is_repository and not _allowed(SQL_ALLOWED, rel):
            found.append(
                Violation(path, node.lineno, "sql", f"SQL outside a repository module: {func or method}()")
            )
        tx = func in TRANSACTION_CALLS or method in TRANSACTION_METHODS
        if tx and name != "flows.py" and not _allowed(TRANSACTIONS_ALLOWED, rel):
            what = func or f".{method}"
            found.append(
                Violation(
                    path,
                    node.lineno,
                    "transactions",
                    f"unit of work opened outside a flow/job/request dependency: {what}()",
                )
            )
    if name not in REDIS_KEY_MODULES:
        for line, value in _strings(tree):
            if value.startswith("bo:") and not _allowed(REDIS_KEYS_ALLOWED, rel):
                found.append(
                    Violation(
                        path, line, "redis-keys", f"Redis key literal {value!r} outside store/shield/cache"
                    )
                )
    return found, edges


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


FRONT_DOORS = ("endpoints", "dependencies")


def _domain_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in DOMAINS else None


def _domain_cycles(graph: dict[str, dict[str, int]], paths: dict[str, Path]) -> list[Violation]:
    domains: dict[str, dict[str, int]] = {d: {} for d in DOMAINS}
    witness: dict[tuple[str, str], tuple[str, int]] = {}
    for module, edges in graph.items():
        source = _domain_of(module)
        if source is None or module.rsplit(".", 1)[-1] in FRONT_DOORS:
            continue
        for target, line in edges.items():
            dest = _domain_of(target)
            if dest is not None and dest != source:
                domains[source][dest] = line
                witness.setdefault((source, dest), (module, line))
    found = []
    for cycle in find_cycles(domains):
        for a in cycle:
            for b in cycle:
                if (a, b) in witness:
                    module, line = witness[(a, b)]
                    found.append(
                        Violation(
                            paths[module], line, "cycles", f"domain {a} -> {b} (cycle: {' <-> '.join(cycle)})"
                        )
                    )
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "src/boxoffice")
    files = sorted(p for p in root.rglob("*.py") if "_pb2" not in p.name)
    modules = {module_name(root, p) for p in files}
    paths = {module_name(root, p): p for p in files}
    violations: list[Violation] = []
    graph: dict[str, dict[str, int]] = {}
    for path in files:
        found, edges = check_file(root, path, modules)
        violations += found
        graph[module_name(root, path)] = dict(edges)
    for cycle in find_cycles(graph):
        members = set(cycle)
        for module in cycle:
            for target, line in sorted(graph[module].items()):
                if target in members:
                    violations.append(
                        Violation(
                            paths[module],
                            line,
                            "cycles",
                            f"{module} -> {target} (cycle: {' <-> '.join(cycle)})",
                        )
                    )
    violations += _domain_cycles(graph, paths)
    lists = {"SQL_ALLOWED": SQL_ALLOWED, "TRANSACTIONS_ALLOWED": TRANSACTIONS_ALLOWED}
    lists |= {"REDIS_KEYS_ALLOWED": REDIS_KEYS_ALLOWED, "FRAMEWORK_ALLOWED": FRAMEWORK_ALLOWED}
    for list_name, allow_list in lists.items():
        for rel in sorted(allow_list):
            # Keep the allow-lists short and true (a tree without the file, as in the checker's own
            # tests, is not the project's).
            if (id(allow_list), rel) not in _USED and (root / rel).exists():
                violations.append(Violation(root / rel, 1, "allow-list", f"stale entry in {list_name}"))
    for v in violations:
        print(v)
    if violations:
        print(f"check_house: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    print(f"check_house: {len(files)} modules, house rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
