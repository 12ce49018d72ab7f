"""DESIGN.md: tenancy is enforced in the repository layer; every query on a tenant table names
the org in its WHERE clause. This reads the source of every module under src/mediakeep, so a new
query that forgets `org_id` fails here (issue 18).

- Tenant tables are discovered from the SQLAlchemy metadata: every mapped table with an
  `org_id` column, no hand list.
- A statement is a `select(...)`, `update(...)`, `delete(...)` or `session.query(...)` naming a
  tenant class, or `session.get(TenantClass, ...)` (a primary-key read, never scoped). It is
  scoped when a `.where(...)`, `.filter(...)`, `.filter_by(...)` or `.having(...)` of its
  chain, or of the variable it is assigned to in the same function, has a predicate on an
  `org_id` column (`Media.org_id == ...`, `Job.org_id.in_(...)`, `filter_by(org_id=...)`).
  Mentioning "org_id" anywhere else (a parameter, a comment, a dict key) does not count.
- Code that acts for every org on purpose says so: a class whose docstring says
  "system-wide", or a function named `*_all_orgs`.
- KNOWN_UNSCOPED lists the code that does not yet follow the rule (issue 15 moves it behind the
  repository base). It may only shrink: a new unscoped statement anywhere fails, and so does an
  entry that is no longer needed. BY_DESIGN lists the reviewed reads whose scope is the user or
  the signed URL rather than an org (how a request learns its org).
- The check reads the source, not the SQL: a predicate added under an `if` counts as present.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import mediakeep.models  # noqa: F401 - registers every mapped class
from mediakeep.models.base import Base

SRC = Path(__file__).parents[1] / "src" / "mediakeep"
STATEMENTS = {"select", "update", "delete"}
SQL_MODULES = {"sa", "sqlalchemy"}  # `sa.select(...)` is a statement too
WHERE_METHODS = {"where", "filter", "filter_by", "having"}
JOIN_METHODS = {"join", "outerjoin", "select_from", "join_from"}

# (module path under src/mediakeep, function qualname) -> why it is still unscoped.
# Issue 15: these act for every org without saying so (no "system-wide" class docstring, no
# `*_all_orgs` name) and move behind the repository base there; delete an entry when its code
# is fixed. Never add one: a new statement on a tenant table names the org.
KNOWN_UNSCOPED: dict[tuple[str, str], str] = {
    ("retention/repository.py", "RetentionRepository.expired"): "issue 15: sweep of every org",
    ("uploads/repository.py", "UploadRepository.expired"): "issue 15: sweep of every org",
    ("uploads/repository.py", "UploadRepository.live_upload_keys"): "issue 15: sweep of every org",
}
# Reviewed reads whose scope is not an org: they are how a request comes to know its org.
BY_DESIGN: dict[tuple[str, str], str] = {
    ("auth/repository.py", "ApiKeyRepository.grant_for_hash"): "the API key names its org",
    ("auth/repository.py", "MembershipRepository.role_in"): "the user's own memberships",
    ("auth/repository.py", "MembershipRepository.default_role"): "the user's own memberships",
    ("auth/repository.py", "MembershipRepository.orgs_of"): "the user's own memberships",
    ("orgs/repository.py", "OrgDirectory.orgs_of"): "the user's own memberships",
    ("orgs/repository.py", "OrgDirectory.all_orgs"): "the operator's list of every org",
    ("media/repository.py", "_with_children"): (
        "a statement fragment: the children are joined ON their org_id = the media's, and "
        "every caller scopes the media by org_id in WHERE (tests/test_tenancy_sql.py runs them)"
    ),
    ("transforms/repository.py", "TransformRepository.source_by_signed_id"): (
        "a /t/ URL carries no org: the media names it, then the URL's signature is checked "
        "with that org's key"
    ),
}
ALLOWED = KNOWN_UNSCOPED | BY_DESIGN


def tenant_classes() -> frozenset[str]:
    """Names of the mapped classes whose table has an org_id column."""
    return frozenset(
        mapper.class_.__name__
        for mapper in Base.registry.mappers
        if "org_id" in mapper.local_table.c
    )


TENANT = tenant_classes()


@dataclass(frozen=True, order=True)
class Unscoped:
    module: str
    function: str
    line: int
    table: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.function)


def _tenant_names(node: ast.AST, tenant: frozenset[str]) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in tenant}


def _named_tables(
    call: ast.Call, parents: dict[ast.AST, ast.AST], tenant: frozenset[str]
) -> set[str]:
    """Tenant classes a statement touches: in its arguments (`select(Media)`,
    `select(func.sum(AiRequest.cost))`) and in the `.join(...)`/`.select_from(...)` targets of
    its chain."""
    names: set[str] = set()
    for arg in call.args:
        names |= _tenant_names(arg, tenant)
    for chained in _chain(call, parents):
        assert isinstance(chained.func, ast.Attribute)
        if chained.func.attr in JOIN_METHODS and chained.args:
            names |= _tenant_names(chained.args[0], tenant)
    return names


def _chain(call: ast.Call, parents: dict[ast.AST, ast.AST]) -> list[ast.Call]:
    """The method calls chained onto `call`: `select(X).join(..).where(..)` -> [join, where]."""
    chained: list[ast.Call] = []
    node: ast.AST = call
    while True:
        parent = parents.get(node)
        grand = parents.get(parent) if parent is not None else None
        if not (
            isinstance(parent, ast.Attribute)
            and isinstance(grand, ast.Call)
            and grand.func is parent
        ):
            return chained
        chained.append(grand)
        node = grand


def _is_statement(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in STATEMENTS
    if isinstance(func, ast.Attribute):
        if func.attr in STATEMENTS and isinstance(func.value, ast.Name):
            return func.value.id in SQL_MODULES
        return func.attr == "query"
    return False


def _is_primary_key_read(call: ast.Call) -> bool:
    """`session.get(Model, id)` / `session.get_one(...)`: a read by primary key alone."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("get", "get_one")
        and bool(call.args)
        and isinstance(call.args[0], ast.Name)
    )


def _mentions_org_column(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "org_id" for n in ast.walk(node))


def _has_org_predicate(call: ast.Call, function: ast.AST) -> bool:
    """Whether a where/filter/filter_by/having call has a predicate on an org_id column, also
    through a local list of conditions (`conditions = [Job.org_id == org]`, `.append(...)`,
    then `.where(and_(*conditions))`)."""
    assert isinstance(call.func, ast.Attribute)
    if call.func.attr == "filter_by":
        return any(keyword.arg == "org_id" for keyword in call.keywords)
    locals_used: set[str] = set()
    for arg in call.args:
        if _mentions_org_column(arg):
            return True
        locals_used |= {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in locals_used for t in targets):
                if _mentions_org_column(node.value):
                    return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("append", "extend")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in locals_used
            and any(_mentions_org_column(arg) for arg in node.args)
        ):
            return True
    return False


def _where_calls_of(
    call: ast.Call, parents: dict[ast.AST, ast.AST], function: ast.AST
) -> list[ast.Call]:
    """The where-like calls chained onto `call`, and onto the variable the chain is assigned
    to (`stmt = select(Media)` ... `stmt = stmt.where(...)`) within the same function."""
    chained = _chain(call, parents)
    found = [
        c for c in chained if isinstance(c.func, ast.Attribute) and c.func.attr in WHERE_METHODS
    ]
    holder = parents.get(chained[-1] if chained else call)
    names: set[str] = set()
    if isinstance(holder, ast.Assign):
        names = {t.id for t in holder.targets if isinstance(t, ast.Name)}
    elif isinstance(holder, ast.AnnAssign) and isinstance(holder.target, ast.Name):
        names = {holder.target.id}
    if names:
        for other in ast.walk(function):
            if not (isinstance(other, ast.Call) and isinstance(other.func, ast.Attribute)):
                continue
            if other.func.attr not in WHERE_METHODS:
                continue
            root: ast.AST = other.func.value
            while isinstance(root, ast.Call | ast.Attribute):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id in names:
                found.append(other)
    return found


def unscoped_statements(
    source: str, module: str = "<test>", tenant: frozenset[str] = TENANT
) -> list[Unscoped]:
    tree = ast.parse(source)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    problems: list[Unscoped] = []

    def visit(node: ast.AST, qualname: list[str], exempt: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                system_wide = "system-wide" in (ast.get_docstring(child) or "")
                visit(child, [*qualname, child.name], exempt or system_wide)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                skip = exempt or child.name.endswith("_all_orgs")
                name = [*qualname, child.name]
                if not skip:
                    check(child, ".".join(name))
                visit(child, name, skip)

    def check(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> None:
        for call in _own_calls(function):
            if _is_statement(call):
                tables = _named_tables(call, parents, tenant)
                if not tables:
                    continue
                wheres = _where_calls_of(call, parents, function)
                if any(_has_org_predicate(w, function) for w in wheres):
                    continue
            elif _is_primary_key_read(call):
                first = call.args[0]
                assert isinstance(first, ast.Name)
                if first.id not in tenant:
                    continue
                tables = {first.id}
            else:
                continue
            problems.append(Unscoped(module, name, call.lineno, ",".join(sorted(tables))))

    visit(tree, [], False)
    return sorted(problems)


def _own_calls(function: ast.AST) -> list[ast.Call]:
    """Calls in a function's body, not in the functions or classes nested in it (those are
    checked on their own, under their own name)."""
    calls: list[ast.Call] = []
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            if not isinstance(node, ast.Lambda):
                continue
        if isinstance(node, ast.Call):
            calls.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return calls


MODULES = sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _all_unscoped() -> list[Unscoped]:
    found: list[Unscoped] = []
    for path in MODULES:
        module = str(path.relative_to(SRC))
        found += unscoped_statements(path.read_text(), module)
    return found


def test_tenant_tables_come_from_the_metadata() -> None:
    # The tables issue 18 found missing from the old hand list are there, and no table
    # without an org_id column is.
    assert {"EventRecord", "AiRequest", "Membership", "TransformCache"} <= TENANT
    assert {"Media", "Job", "Webhook", "WebhookDelivery"} <= TENANT
    assert not {"User", "Org", "RefreshToken"} & TENANT


def test_every_tenant_query_in_every_module_is_scoped_by_org() -> None:
    new = [p for p in _all_unscoped() if p.key not in ALLOWED]
    assert new == [], "statements on tenant tables without an org_id predicate:\n" + "\n".join(
        f"  {p.module}:{p.line} {p.function} ({p.table})" for p in new
    )


def test_the_allow_list_only_shrinks() -> None:
    """An entry whose code is now scoped (or gone) must leave the allow-lists."""
    still = {p.key for p in _all_unscoped()}
    stale = sorted(set(ALLOWED) - still)
    assert stale == [], f"scoped now, remove from KNOWN_UNSCOPED/BY_DESIGN: {stale}"


# ------------------------------------------------------------------ the lint's own behaviour


def _found(source: str) -> list[tuple[str, int, str]]:
    return [(p.function, p.line, p.table) for p in unscoped_statements(source)]


def test_the_lint_catches_an_unscoped_query() -> None:
    source = "async def leak(session):\n    return await session.execute(select(Media))\n"
    assert _found(source) == [("leak", 2, "Media")]


def test_mentioning_org_id_elsewhere_is_not_a_predicate() -> None:
    source = (
        "async def leak(session, org_id):\n"
        "    rows = await session.execute(select(Job).where(Job.id == org_id))\n"
        "    return {'org_id': org_id, 'rows': rows}\n"
    )
    assert _found(source) == [("leak", 2, "Job")]


def test_scoped_forms_pass() -> None:
    source = (
        "async def a(session, org):\n"
        "    return select(Media).where(Media.id == 1, Media.org_id == org)\n"
        "async def b(session, org):\n"
        "    stmt = select(EventRecord.id).order_by(EventRecord.id)\n"
        "    if org:\n"
        "        stmt = stmt.where(EventRecord.org_id == org)\n"
        "    return stmt\n"
        "async def c(session, org):\n"
        "    return session.query(Membership).filter_by(org_id=org, user_id=1)\n"
        "async def d(session, orgs):\n"
        "    return sa.update(AiRequest).where(AiRequest.org_id.in_(orgs)).values(x=1)\n"
        "async def e(session, org):\n"
        "    return select(Variant).join(Media).where(Media.org_id == org)\n"
    )
    assert _found(source) == []


def test_every_statement_kind_and_primary_key_reads_are_checked() -> None:
    source = (
        "async def a(session):\n    return sa.delete(TransformCache)\n"
        "async def b(session):\n    return update(Webhook).values(x=1)\n"
        "async def c(session, id):\n    return await session.get(Caption, id)\n"
        "async def d(session, id):\n    return await session.get(User, id)\n"
        "async def e(session):\n    return session.query(Membership).filter_by(user_id=1)\n"
    )
    assert _found(source) == [
        ("a", 2, "TransformCache"),
        ("b", 4, "Webhook"),
        ("c", 6, "Caption"),
        ("e", 10, "Membership"),
    ]


def test_only_declared_system_wide_code_may_skip_the_org() -> None:
    source = (
        'class Queue:\n    """Worker side, system-wide."""\n'
        "    async def claim(self, session):\n        return select(Job)\n"
        "async def expired_all_orgs(session):\n    return select(TusUpload)\n"
        "async def sneaky(session):\n    return select(TusUpload)\n"
        "class Repo:\n"
        "    async def nested(self, session):\n"
        "        async def inner():\n            return select(Media)\n"
        "        return await inner()\n"
    )
    assert _found(source) == [("Repo.nested.inner", 12, "Media"), ("sneaky", 8, "TusUpload")]
