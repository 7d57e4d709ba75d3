"""wheels-etl: source -> Parquet spool -> Postgres, crash-proof and with flat memory."""

import os
import sys

# Arrow's allocator: jemalloc (in pyarrow's Linux wheels), which gives freed memory back
# after a second.  pyarrow's default, mimalloc, keeps the pages of freed buffers: extract,
# which builds and frees one release's tables at a time in several threads, peaked 20 MB
# higher with it.  The C library's allocator returns memory too but made load read a big
# JSON column 35 % slower (fresh pages for every multi-MB buffer).  The measurements are
# in benchmarks/FINDINGS.md ("Arrow's allocator is jemalloc").  Arrow reads this once,
# when pyarrow is imported, so it is set here, before any module of ours imports pyarrow;
# a value the user set wins.
if sys.platform == "linux":
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

# One OpenBLAS thread.  pyarrow imports numpy, whose OpenBLAS starts a thread per core that
# spins for about 0.1 s before it sleeps, although nothing here calls BLAS: `import
# etl.load` took 0.38-0.41 user CPU-s with it and 0.27-0.29 without, the spin landing on
# the cores the loader and its Postgres backend need (benchmarks/FINDINGS.md).  Set
# before numpy loads, like the pool above; a value the user set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

#: The one place the version is written (pyproject.toml reads it from here), so that
#: `wheels-etl` need not import importlib.metadata (0.1 s) at every start.
__version__ = "0.1.0"
