"""No `async def` in app/ reaches the database (directly or through app/'s own functions) outside a thread.

An `async def` route, dependency or handler runs on the event loop, so one query there, or one wait for a
pooled connection, stops every request (the 30 s freeze of 16 API clients). The check is by name: a
function is blocking when it names a session or an engine (`session`, `Session`, `SessionDep`,
`get_engine`, `session_scope`) or calls a blocking function of app/; what is passed to
`run_in_threadpool` / `to_thread.run_sync` is exempt.
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
MARKERS = {"session", "Session", "SessionDep", "get_engine", "session_scope"}
OFFLOAD = {"run_in_threadpool", "run_sync"}
# Reviewed exceptions, each with its reason.
ALLOWED = {
    "app/api/deps.py:session_dep": "creates the Session (no I/O) and closes it in the thread pool",
    "app/main.py:_lifespan": "startup and shutdown, before and after any request",
    "app/api/deps.py:streaming_user": "hands its session to current_user_optional, which queries in the thread pool",
}
# Files where `session` means the signed login cookie's data, never a database session.
COOKIE_ONLY = {"app/core/security.py"}


def _names_outside_offload(node: ast.AST) -> tuple[set[str], set[str]]:
    """(names referenced, functions called) in a body, skipping the arguments of thread-pool offloads."""
    names: set[str] = set()
    calls: set[str] = set()

    def visit(n: ast.AST) -> None:
        if isinstance(n, ast.Call):
            fn = n.func
            fname = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if fname in OFFLOAD:
                return
            if isinstance(fn, ast.Name):
                calls.add(fn.id)
            elif isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
                calls.add(f"{fn.value.id}.{fn.attr}")
        if isinstance(n, ast.Name):
            names.add(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child)

    body = node.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else [node]
    for stmt in body:
        visit(stmt)
    return names, calls


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, set[str]]]:
    """Every function in app/ as (file:name, node, module aliases of app/ imported in its file)."""
    out = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        modules = {
            alias.asname or alias.name
            for imp in ast.walk(tree)
            if isinstance(imp, ast.ImportFrom) and (imp.module or "").startswith("app")
            for alias in imp.names
        }
        rel = path.relative_to(APP.parent).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((f"{rel}:{node.name}", node, modules))
    return out


def blocking_async_functions() -> dict[str, str]:
    """{file:name of an async def: why it blocks} over app/."""
    funcs = _functions()
    refs = {key: _names_outside_offload(node) for key, node, _ in funcs}
    blocking: dict[str, str] = {}  # function name -> reason (by name: app/ has few duplicate names)
    for key, node, _ in funcs:
        names, _calls = refs[key]
        if (
            not isinstance(node, ast.AsyncFunctionDef)
            and names & MARKERS
            and key.split(":")[0] not in COOKIE_ONLY
        ):
            blocking[node.name] = f"names {sorted(names & MARKERS)[0]}"
    changed = True
    while changed:  # a sync function calling a blocking one blocks too
        changed = False
        for key, node, modules in funcs:
            if isinstance(node, ast.AsyncFunctionDef) or node.name in blocking:
                continue
            hit = _blocking_call(refs[key][1], blocking, modules)
            if hit:
                blocking[node.name] = f"calls {hit}"
                changed = True
    found = {}
    for key, node, modules in funcs:
        if not isinstance(node, ast.AsyncFunctionDef) or key in ALLOWED:
            continue
        names, calls = refs[key]
        if names & MARKERS:
            found[key] = f"names {sorted(names & MARKERS)[0]} on the event loop"
        elif hit := _blocking_call(calls, blocking, modules):
            found[key] = f"calls {hit} on the event loop"
    return found


def _blocking_call(calls: set[str], blocking: dict[str, str], modules: set[str]) -> str:
    for call in sorted(calls):
        base, _, attr = call.rpartition(".")
        # `module.function` for a module of app/; a method call on some object is not followed
        name = attr if base in modules else call if not base else ""
        if name in blocking:
            return f"{call} ({blocking[name]})"
    return ""


def test_no_async_function_in_app_reaches_the_database_on_the_event_loop():
    found = blocking_async_functions()
    assert not found, "async def on the event loop reaching the database:\n" + "\n".join(
        f"  {key}: {why}" for key, why in sorted(found.items())
    )


def test_the_check_finds_a_query_in_an_async_def(tmp_path):
    """The checker itself: a query directly or one call away is found; the same work offloaded is not."""
    tree = ast.parse(
        "async def direct(session):\n    session.exec(1)\n"
        "def helper(session):\n    return session.get(1)\n"
        "async def indirect(x):\n    return helper(x)\n"
        "async def offloaded(session):\n    return await run_in_threadpool(helper, session)\n"
    )
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert _names_outside_offload(funcs["direct"])[0] & MARKERS
    assert _blocking_call(_names_outside_offload(funcs["indirect"])[1], {"helper": "names session"}, set())
    names, calls = _names_outside_offload(funcs["offloaded"])
    assert not names & MARKERS
    assert not _blocking_call(calls, {"helper": "names session"}, set())
