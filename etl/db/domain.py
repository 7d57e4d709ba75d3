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
* ``build_steps`` (table, filled by load in the file's transaction): the build-sequence
  summary as rows, with ``wheel_file`` (the last path component of ``wheel_filename``) and
  ``origin``: ``prebuilt`` when ``prebuilt`` is true, else ``reused`` when ``skipped`` is
  true, else ``built``.  Indexed by build and ``wheel_file``.
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

BUILD_STEPS_TABLE = """CREATE TABLE build_steps (
    product text NOT NULL,
    release text NOT NULL,
    architecture text NOT NULL,
    variant text NOT NULL,
    position int NOT NULL,
    name text,
    version text,
    wheel_file text,
    prebuilt boolean NOT NULL,
    skipped boolean NOT NULL,
    origin text NOT NULL CHECK (origin IN ('built', 'prebuilt', 'reused'))
)"""

BUILD_STEPS_INDEX = (
    "CREATE INDEX build_steps_wheel_idx"
    " ON build_steps (product, release, architecture, variant, wheel_file)"
)

DROP_ORIGINS_VIEW = """CREATE VIEW drop_origins AS
SELECT d.product, d.release, d.architecture, d.variant, d.filename, d.name, d.version,
       s.origin
FROM drops d
LEFT JOIN LATERAL (
    SELECT s.origin FROM build_steps s
    WHERE s.product = d.product AND s.release = d.release
      AND s.architecture = d.architecture AND s.variant = d.variant
      AND s.wheel_file = d.filename
    ORDER BY s.position LIMIT 1
) AS s ON true"""

_FILL_STEPS = f"""INSERT INTO build_steps (product, release, architecture, variant, position,
    name, version, wheel_file, prebuilt, skipped, origin)
SELECT product, release, architecture, variant, position, name, version, wheel_file,
       prebuilt, skipped,
       CASE WHEN prebuilt THEN 'prebuilt' WHEN skipped THEN 'reused' ELSE 'built' END
FROM (
    SELECT a.product, a.release, a.architecture, a.variant, s.position::int AS position,
           {_pep503("s.value->>'name'")} AS name, s.value->>'version' AS version,
           substring(s.value->>'wheel_filename' from '[^/\\\\]*$') AS wheel_file,
           coalesce(s.value->'prebuilt' = 'true'::jsonb, false) AS prebuilt,
           coalesce(s.value->'skipped' = 'true'::jsonb, false) AS skipped
    FROM artifacts a
    CROSS JOIN LATERAL jsonb_array_elements(
        {_json("a.build_sequence_summary", "array", "[]")}) WITH ORDINALITY AS s(value, position)
    WHERE jsonb_typeof(s.value) = 'object' AND {{where}}
) AS steps"""

#: The statements of the schema migration that adds the domain tables and views, and
#: fills ``build_steps`` from every artifact already loaded.
MIGRATION: tuple[str, ...] = (
    BUILD_STEPS_TABLE,
    BUILD_STEPS_INDEX,
    GRAPH_EDGES_VIEW,
    CONSTRAINT_LINES_VIEW,
    DROP_ORIGINS_VIEW,
    _FILL_STEPS.format(where="true"),
)

_FILL_RELEASE = _FILL_STEPS.format(where="a.product = %(product)s AND a.release = %(release)s")


def fill_release(conn: Conn, product: str, release: str) -> None:
    """Fill ``build_steps`` for a release just copied (the caller's transaction; the
    release's old rows went with :func:`etl.db.releases.replace_release`)."""
    conn.execute(_FILL_RELEASE, {"product": product, "release": release})
