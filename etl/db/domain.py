"""Domain tables and views over what load stores: graph edges, build steps, constraints.

Everything is derived server-side from the jsonb documents of ``artifacts`` (no JSON is
parsed on the client):

* ``graph_edges`` (view): one row per edge of a build's dependency graph, for both of
  fromager's formats: the current one (``{"name==version": {..., "edges": [{"key",
  "req_type", "req"}]}}``) and the legacy one (``{"name==version": [[req_type, name,
  version, req], ...]}``).  The graph's root is the node ``""``: its edges have
  ``parent_name = ''`` and ``parent_version = ''`` and lead to the top-level requirements.
  Names are PEP 503 normalized.  A view costs the load nothing; a query on one build
  (``WHERE product = … AND release = … AND architecture = … AND variant = …``) expands
  that build's graph only (the predicates reach the ``artifacts`` primary key).
* ``constraint_lines`` (view): the stored constraints array as rows ``(position, name,
  specifier, marker)``.
* ``build_origins`` (table, one row per build, filled by load in the file's transaction):
  ``wheel_files``, the build-sequence summary's wheel file names (the last path component
  of each ``wheel_filename``) in summary order, and ``origins``, each entry's origin:
  ``prebuilt`` when its ``prebuilt`` is true, else ``reused`` when its ``skipped`` is
  true, else ``built``.  One row per build (not one per wheel) because that costs the
  load a few milliseconds per build instead of a third of its time (an indexed row per
  wheel measured +35 %); a lookup is ``origins[array_position(wheel_files, filename)]``
  (the first entry naming the file).
* ``drop_origins`` (view): every drop with the ``origin`` of the first summary entry whose
  ``wheel_filename`` ends with the drop's file name (as a whole path component), null when
  no entry names it.

Documents that do not have the expected shape give no rows (never an error: a view must
not fail a query, and the fill must not fail a load).
"""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def _pep503(expr: str) -> str:
    return f"lower(regexp_replace({expr}, '[-_.]+', '-', 'g'))"


def _json(expr: str, kind: str, empty: str) -> str:
    """``expr`` when its JSON type is ``kind``, else the empty document ``empty``."""
    return f"CASE WHEN jsonb_typeof({expr}) = '{kind}' THEN {expr} ELSE '{empty}'::jsonb END"


GRAPH_EDGES_VIEW = f"""CREATE VIEW graph_edges AS
SELECT a.product, a.release, a.architecture, a.variant,
       {_pep503("split_part(n.key, '==', 1)")} AS parent_name,
       split_part(n.key, '==', 2) AS parent_version,
       e.child_name, e.child_version, e.req_type, e.req
FROM artifacts a
CROSS JOIN LATERAL jsonb_each({_json("a.dependency_graph", "object", "{}")}) AS n(key, node)
CROSS JOIN LATERAL (
    SELECT {_pep503("split_part(x->>'key', '==', 1)")} AS child_name,
           split_part(x->>'key', '==', 2) AS child_version,
           x->>'req_type' AS req_type, x->>'req' AS req
    FROM jsonb_array_elements({_json("n.node->'edges'", "array", "[]")}) AS x
    WHERE jsonb_typeof(n.node) = 'object' AND x->>'key' IS NOT NULL
    UNION ALL
    SELECT {_pep503("x->>1")}, x->>2, x->>0, x->>3
    FROM jsonb_array_elements({_json("n.node", "array", "[]")}) AS x
    WHERE x->>1 IS NOT NULL
) AS e"""

CONSTRAINT_LINES_VIEW = f"""CREATE VIEW constraint_lines AS
SELECT a.product, a.release, a.architecture, a.variant, c.position::int AS position,
       c.value->>'name' AS name, coalesce(c.value->>'specifier', '') AS specifier,
       c.value->>'marker' AS marker
FROM artifacts a
CROSS JOIN LATERAL jsonb_array_elements({_json("a.constraints_file", "array", "[]")})
    WITH ORDINALITY AS c(value, position)
WHERE c.value->>'name' IS NOT NULL"""

BUILD_ORIGINS_TABLE = """CREATE TABLE build_origins (
    product text NOT NULL,
    release text NOT NULL,
    architecture text NOT NULL,
    variant text NOT NULL,
    wheel_files text[] NOT NULL,
    origins text[] NOT NULL,
    PRIMARY KEY (product, release, architecture, variant)
)"""

DROP_ORIGINS_VIEW = """CREATE VIEW drop_origins AS
SELECT d.product, d.release, d.architecture, d.variant, d.filename, d.name, d.version,
       o.origins[array_position(o.wheel_files, d.filename)] AS origin
FROM drops d
LEFT JOIN build_origins o ON o.product = d.product AND o.release = d.release
    AND o.architecture = d.architecture AND o.variant = d.variant"""

#: One row per artifact: the summary's wheel file names and their origins, in summary
#: order (``array_position`` finds the first entry naming a file).  ``{basename}``: the
#: last path component (``split_part(p, '/', -1)`` on PostgreSQL >= 14, a third of the cost
#: of the portable ``reverse`` form).  Two arrays cost half of a jsonb object (measured).
_FILL_ORIGINS = f"""INSERT INTO build_origins (product, release, architecture, variant,
    wheel_files, origins)
SELECT a.product, a.release, a.architecture, a.variant,
       coalesce(f.wheel_files, '{{{{}}}}'), coalesce(f.origins, '{{{{}}}}')
FROM artifacts a
CROSS JOIN LATERAL (
    SELECT array_agg(coalesce({{basename}}, '') ORDER BY s.position) AS wheel_files,
           array_agg(CASE WHEN s.value->>'prebuilt' = 'true' THEN 'prebuilt'
                          WHEN s.value->>'skipped' = 'true' THEN 'reused' ELSE 'built' END
                     ORDER BY s.position) AS origins
    FROM jsonb_array_elements({_json("a.build_sequence_summary", "array", "[]")})
        WITH ORDINALITY AS s(value, position)
) AS f
WHERE {{where}}"""

_PATH = "s.value->>'wheel_filename'"
_BASENAME_ANY = f"reverse(split_part(reverse({_PATH}), '/', 1))"
_BASENAME_14 = f"split_part({_PATH}, '/', -1)"
_RELEASE = "a.product = %(product)s AND a.release = %(release)s"

#: The statements of the schema migration that adds the domain tables and views, and
#: fills ``build_origins`` from every artifact already loaded.
MIGRATION: tuple[str, ...] = (
    BUILD_ORIGINS_TABLE,
    GRAPH_EDGES_VIEW,
    CONSTRAINT_LINES_VIEW,
    DROP_ORIGINS_VIEW,
    _FILL_ORIGINS.format(basename=_BASENAME_ANY, where="true"),
)


def fill_statement(server_version: int) -> str:
    """The statement filling ``build_origins`` for one release (``%(product)s``,
    ``%(release)s``)."""
    basename = _BASENAME_14 if server_version >= 140000 else _BASENAME_ANY
    return _FILL_ORIGINS.format(basename=basename, where=_RELEASE)


def fill_release(conn: Conn, product: str, release: str) -> None:
    """Fill ``build_origins`` for a release just copied (the caller's transaction; the
    release's old rows went with :func:`etl.db.releases.replace_release`)."""
    statement = fill_statement(conn.info.server_version)
    conn.execute(statement, {"product": product, "release": release})
