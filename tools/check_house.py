"""The house rules `make lint` checks (docs/architecture.md): an AST pass over src/boxoffice.

Every rule denies by default: what is not named as allowed is a violation.

  layout        the top level holds only the seven roots (app cli worker config runtime errors
                observability) and the known folders: machinery (kit db redis http ops), the
                domains, the front doors (web grpc) and bench
  sql           SQL (sqlalchemy statement builders, text(), raw driver calls, SQL string literals)
                only in */repository.py and db/, plus the named allow-list below; a driver imported
                only under TYPE_CHECKING still counts
  transactions  units of work (.begin(), .transaction(), unit_of_work(), lean_unit_of_work(),
                run_idempotent*(), .commit()) only in */flows.py, http/deps.py (the request's unit of
                work), db/ (the machinery) and the named allow-list
  redis-keys    Redis keys only in stores (store.py / shield.py / cache.py) and redis/: no "bo:" key
                literal nor a "bo" prefix to build one elsewhere, and no Redis command called on a
                runtime's client outside them
  framework     web frameworks (fastapi, starlette, uvicorn) only in app.py, http/, web/,
                */endpoints.py and */dependencies.py, plus the named allow-list
  imports       ops/ only from cli.py (and ops/ itself, and bench, which starts its own stacks); the
                worker only from cli.py and ops/up.py; kit/ imports nothing of ours but errors,
                config and kit/; the machinery (db redis) imports no domain and no front door;
                no domain module imports a front door (web, grpc, http, app, cli, ops, bench) but its
                own endpoints.py / dependencies.py
  cycles        no import cycle among src/boxoffice modules (lazy imports inside functions count;
                `if TYPE_CHECKING:` imports do not), and none among the domain packages once
                their front doors (endpoints.py, dependencies.py) are left out

Prints file:line: rule: message for each violation and exits 1 if there is any.
Usage: python tools/check_house.py [src/boxoffice]
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "boxoffice"
ROOT_FILES = (
    "__init__.py",
    "app.py",
    "cli.py",
    "worker.py",
    "config.py",
    "runtime.py",
    "errors.py",
    "observability.py",
)
MACHINERY = ("kit", "db", "redis", "http", "ops")
DOMAINS = (
    "auth",
    "catalog",
    "waiting_room",
    "booking",
    "payments",
    "tickets",
    "admin",
    "salestats",
    "ratelimit",
    "mail",
)
FRONT_DOORS = ("web", "grpc")
FOLDERS = (*MACHINERY, *DOMAINS, *FRONT_DOORS, "bench", "locale")  # locale/: gettext catalogs (data)
# What a domain module must not import (its own endpoints.py / dependencies.py may).
ABOVE_DOMAINS = ("web", "grpc", "http", "app", "cli", "ops", "bench", "worker")
KIT_MAY_IMPORT = ("errors", "config", "kit")
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
SQL_LITERAL = re.compile(
    r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|WITH\s+\w+\s+AS\s*\()",
    re.S,
)
TRANSACTION_CALLS = {"unit_of_work", "lean_unit_of_work", "run_idempotent", "run_idempotent_steps"}
TRANSACTION_METHODS = {"begin", "begin_nested", "commit", "transaction"}
REDIS_CLIENTS = {"redis", "hot_redis"}  # a runtime's clients: runtime.redis, runtime.hot_redis
REDIS_COMMANDS = set(
    "get set mget mset setex setnx getdel getset incr incrby decr decrby delete unlink exists expire"
    " pexpire expireat ttl pttl hget hset hmget hgetall hdel hincrby hexists hlen eval evalsha fcall"
    " script_load zadd zrem zrange zrangebyscore zrevrange zcard zscore zrank zincrby zpopmin sadd srem"
    " smembers sismember scard lpush rpush lpop rpop lrange llen ltrim xadd xread xreadgroup xrange"
    " xrevrange xlen xtrim xdel publish pipeline keys scan scan_iter flushdb flushall execute_command".split()
)
REDIS_KEY_MODULES = ("store.py", "shield.py", "cache.py")

# Named exceptions (module path relative to src/boxoffice), each with its reason.
SQL_ALLOWED = {
    "payments/ledger.py": "the balance ledger's conditional debit/credit",
    "runtime.py": "the readiness probe's SELECT 1",
    "bench/ceilings.py": "raw ceilings measured with the driver directly",
    "ops/backends/postgres.py": "the embedded server's bootstrap through psql (its database)",
}
TRANSACTIONS_ALLOWED = {
    "bench/ceilings.py": "the raw PostgreSQL ceiling's transactions on the driver",
    "ops/demo.py": "the seed-demo CLI command's one unit of work",
    "bench/setup.py": "the bench's data set-up",
    "bench/repository.py": "the bench's pg_stat_statements reset (a savepoint)",
    "bench/runner.py": "the bench's audit and snapshots after a run",
}
REDIS_ALLOWED = {
    "db/outbox.py": "the stream names the outbox relay publishes to",
    "bench/ceilings.py": "the raw Redis ceiling's scratch keys",
    "bench/flash_sale.py": "the bench reads the admission order back from a show's event stream",
}
FRAMEWORK_ALLOWED = {
    "payments/simulator.py": "the payment-provider simulator's own app (its own process)",
    "cli.py": "`serve` runs uvicorn's multi-process supervisor",
    "ops/up.py": "up's API processes run uvicorn on the shared listener",
}
IMPORTS_ALLOWED = {
    "bench/stack.py": "the bench starts its own stacks (embedded backends, roles behind nginx)",
    "bench/commands.py": "the bench's CLI reports a backend that cannot start in one line",
}


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
    type_only: bool = False


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
    type_only = _type_checking_lines(tree)
    for node in ast.walk(tree):
        only = getattr(node, "lineno", None) in type_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno, (), only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Import(target, node.lineno, tuple(a.name for a in node.names), only)


def _counts_a_limit(node: ast.Call) -> bool:
    """`ratelimit.begin(...)` counts a request against a rate limit (a Redis command): no
    transaction, whatever its method's name."""
    func = node.func
    return (
        isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "ratelimit"
    )


def _call_name(node: ast.Call) -> tuple[str | None, str | None]:
    """(function name, method name) of a call."""
    if isinstance(node.func, ast.Name):
        return node.func.id, None
    if isinstance(node.func, ast.Attribute):
        return None, node.func.attr
    return None, None


def _redis_command(node: ast.Call) -> str | None:
    """`x.redis.get(...)`, `runtime.hot_redis.evalsha(...)`, `redis.set(...)`: the command's name."""
    func = node.func
    if not isinstance(func, ast.Attribute):
        return None
    owner = func.value
    name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
    return func.attr if name in REDIS_CLIENTS and func.attr in REDIS_COMMANDS else None


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                yield node.lineno, head.value


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                lines.add(body[0].lineno)
    return lines


# Money is formatted and parsed once, in kit/money.py (ISO 4217 minor units: KRW has none). A
# division or multiplication by 100 anywhere else, in Python, a template or our JS, is the old
# "minor/100 with two decimals" habit the rule `money` refuses.
MONEY_HOME = "kit/money.py"
MONEY_TEXT = re.compile(
    r"(?<![\w.])(?:minor|amount|price|balance|total|value|v)\w*\s*(?:/|\*)\s*100\b(?!\.\d*[1-9])"
)
MONEY_TEXT_ANY = re.compile(r"/\s*100(?:\.0*)?\b")


def _hundredth(node: ast.AST) -> bool:
    """`x / 100`, `x // 100`, `x * 100`, `100 * x` (a float or an int hundred)."""
    if not isinstance(node, ast.BinOp) or not isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mult)):
        return False
    sides = (node.right,) if not isinstance(node.op, ast.Mult) else (node.left, node.right)
    return any(
        isinstance(s, ast.Constant) and type(s.value) in (int, float) and s.value == 100 for s in sides
    )


def check_money_text(root: Path) -> list[Violation]:
    """Templates and our JS: no `/ 100` (percentages are `* 100`, and only of non-money names)."""
    found: list[Violation] = []
    web = root / "web"
    texts = [
        *web.glob("templates/**/*.html"),
        *(p for p in web.glob("static/js/**/*.js") if "vendor" not in p.parts),
    ]
    for path in sorted(texts):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if MONEY_TEXT_ANY.search(text) or MONEY_TEXT.search(text):
                found.append(
                    Violation(path, number, "money", f"money scaled by 100 by hand: use {MONEY_HOME}")
                )
    return found


def check_layout(root: Path) -> list[Violation]:
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "__pycache__")) or entry.name == "py.typed":
            continue
        if entry.is_dir():
            if entry.name not in FOLDERS:
                found.append(
                    Violation(entry, 1, "layout", f"unknown folder {entry.name}/ (see docs/architecture.md)")
                )
        elif entry.suffix == ".py" and entry.name not in ROOT_FILES:
            found.append(
                Violation(
                    entry, 1, "layout", f"{entry.name} at the top level: put it in the folder it belongs to"
                )
            )
    return found


def _import_rules(rel: str, top_dir: str, name: str, target: str) -> str | None:
    """Why importing `target` (a boxoffice module) from `rel` breaks a house rule, or None."""
    parts = target.split(".")[1:]
    first = parts[0] if parts else ""
    if first == "ops" and top_dir != "ops" and rel != "cli.py" and not _allowed(IMPORTS_ALLOWED, rel):
        return f"{rel} imports {target} (ops/ is the CLI's: only cli.py imports it)"
    if target == f"{PACKAGE}.worker" and rel not in ("cli.py", "ops/up.py"):
        return f"{rel} imports the worker (only the CLI and ops/up.py may)"
    if top_dir == "kit" and first not in KIT_MAY_IMPORT:
        return f"{rel} imports {target} (kit/ imports nothing of ours but errors, config and kit/)"
    if top_dir in ("db", "redis") and first in (*DOMAINS, *ABOVE_DOMAINS):
        return f"{rel} imports {target} (the machinery imports no domain and no front door)"
    front_door_file = name in ("endpoints.py", "dependencies.py")
    if top_dir in DOMAINS and not front_door_file and first in ABOVE_DOMAINS:
        return f"{rel} imports {target} (a domain imports no front door)"
    return None


def check_file(root: Path, path: Path, modules: set[str]) -> tuple[list[Violation], list[tuple[str, int]]]:
    rel = path.relative_to(root).as_posix()
    name = path.name
    top_dir = rel.split("/")[0] if "/" in rel else ""
    module = module_name(root, path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Violation] = []
    edges: list[tuple[str, int]] = []
    sql_names: set[str] = set()
    talks_sql = False  # raw .execute()/.fetch() count where a database driver is imported at all
    sql_home = name == "repository.py" or top_dir == "db"
    redis_home = name in REDIS_KEY_MODULES or top_dir == "redis"
    framework_home = (
        rel == "app.py" or top_dir in ("http", "web") or name in ("endpoints.py", "dependencies.py")
    )

    for imp in imports(tree, module, name == "__init__.py"):
        top = imp.target.split(".")[0]
        if top in ("sqlalchemy", "asyncpg"):
            talks_sql = True
            sql_names |= set(imp.names) & SQL_BUILDERS
        if imp.type_only:
            continue
        if top in FRAMEWORKS and not framework_home and not _allowed(FRAMEWORK_ALLOWED, rel):
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
            why = _import_rules(rel, top_dir, name, target)
            if why:
                found.append(Violation(path, imp.line, "imports", why))

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, method = _call_name(node)
        sql = func in sql_names or (talks_sql and method in RAW_DRIVER_CALLS)
        if sql and not sql_home and not _allowed(SQL_ALLOWED, rel):
            found.append(
                Violation(path, node.lineno, "sql", f"SQL outside a repository module: {func or method}()")
            )
        tx = (func in TRANSACTION_CALLS or method in TRANSACTION_METHODS) and not _counts_a_limit(node)
        tx_home = name == "flows.py" or rel == "http/deps.py" or top_dir == "db"
        if tx and not tx_home and not _allowed(TRANSACTIONS_ALLOWED, rel):
            what = func or f".{method}"
            found.append(
                Violation(
                    path,
                    node.lineno,
                    "transactions",
                    f"unit of work opened outside a flow/job/request dependency: {what}()",
                )
            )
        command = _redis_command(node)
        if command and not redis_home and not _allowed(REDIS_ALLOWED, rel):
            found.append(
                Violation(path, node.lineno, "redis-keys", f"Redis command {command}() outside a store")
            )
    if rel != MONEY_HOME:
        for node in ast.walk(tree):
            if _hundredth(node):
                found.append(
                    Violation(path, node.lineno, "money", f"money scaled by 100 by hand: use {MONEY_HOME}")
                )
    docstrings = _docstring_lines(tree)
    for line, value in _strings(tree):
        if line in docstrings:
            continue
        if SQL_LITERAL.match(value) and not sql_home and not _allowed(SQL_ALLOWED, rel):
            found.append(Violation(path, line, "sql", "SQL string outside a repository module"))
        key = value.startswith("bo:") or value == "bo"
        if key and not redis_home and not _allowed(REDIS_ALLOWED, rel):
            found.append(
                Violation(path, line, "redis-keys", f"Redis key part {value[:20]!r} outside a store")
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


FRONT_DOOR_FILES = ("endpoints", "dependencies")


def _domain_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in DOMAINS else None


def _domain_cycles(graph: dict[str, dict[str, int]], paths: dict[str, Path]) -> list[Violation]:
    domains: dict[str, dict[str, int]] = {d: {} for d in DOMAINS}
    witness: dict[tuple[str, str], tuple[str, int]] = {}
    for module, edges in graph.items():
        source = _domain_of(module)
        if source is None or module.rsplit(".", 1)[-1] in FRONT_DOOR_FILES:
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
    violations: list[Violation] = check_layout(root) + check_money_text(root)
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
    lists |= {"REDIS_ALLOWED": REDIS_ALLOWED, "FRAMEWORK_ALLOWED": FRAMEWORK_ALLOWED}
    lists |= {"IMPORTS_ALLOWED": IMPORTS_ALLOWED}
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
