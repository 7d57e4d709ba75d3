"""Generate realistic wheel-collections sources (protocol v1) of any size, deterministically.

The tree follows the source protocol and can be served as-is by any static web server or
read as a directory::

    index.json
    <product>/releases.json                     page 1 of the release listing
    <product>/releases-2.json ...               further pages (``next`` is a relative URL)
    <product>/<version>/release.json
    <product>/<version>/<arch>/<variant>/graph.json                     fromager graph, indent=2
    <product>/<version>/<arch>/<variant>/constraints.txt                fromager constraints
    <product>/<version>/<arch>/<variant>/build-sequence-summary.json    one-line JSON array
    <product>/<version>/<arch>/<variant>/wheels.json                    PEP 691 ``files``

The content imitates real fromager output (see ``etl/sample_collection`` for the real thing):
package names come from real stacks (the e2e AI stack, webstack) plus derived
``<name>-plugin-N`` names, versions are real-looking and move forward from release to
release, dependency edges use the same ``req_type`` mix (build-system, build-backend,
build-sdist, install, toplevel) and requirement spellings as fromager graphs. Nothing is
random filler: a generated ``graph.json`` compresses like a real one (gzip about 6x in
the fromager <=0.68 format used for even-numbered products, like the real e2e AI stack's
5.8x; about 7.8x in the 0.101.0 format of odd-numbered products, where the real AI stack
rewritten to that format gives 7.6x).

Generation streams: one release is built, written and forgotten before the next, and the
release listing is written page by page, so memory stays flat for any number of releases.

Nothing here imports ``etl``. What a correct ETL lands for a tree is the oracle's
(:mod:`tests.support.oracle`).

Modules: ``constants`` and ``universe`` (data), ``model`` (GenSpec, Summary, helpers),
``template`` (a product's packages and edges), ``render`` (one artifact's documents),
``writer`` (:func:`generate`), ``readback`` (walking a tree on disk), ``mutate``
(:func:`mutate_release`), ``__main__`` (CLI).

Library::

    summary = generate(Path("out"), GenSpec(products=2, releases=100))
    mutate_release(Path("out"), "rhai", "1.0.3", withdraw_wheel=True)

CLI::

    python -m tests.support.gen OUT --products 2 --releases 100 --artifacts 6 \\
        --packages 300 --drops 500 --seed 1
"""

from tests.support.gen.constants import FILE_KEYS, FILE_NAMES, FORMAT
from tests.support.gen.model import GenSpec, Summary, fmt_ts, parse_ts
from tests.support.gen.mutate import mutate_release
from tests.support.gen.readback import iter_release_entries, resolve
from tests.support.gen.render import constraints_text, dump_graph, dump_wheels, install_reachable
from tests.support.gen.writer import generate

__all__ = [
    "FILE_KEYS",
    "FILE_NAMES",
    "FORMAT",
    "GenSpec",
    "Summary",
    "constraints_text",
    "dump_graph",
    "dump_wheels",
    "fmt_ts",
    "generate",
    "install_reachable",
    "iter_release_entries",
    "mutate_release",
    "parse_ts",
    "resolve",
]
