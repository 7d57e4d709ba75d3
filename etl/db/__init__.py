"""Everything wheels-etl says to PostgreSQL, one concern per module.

* :mod:`etl.db.connect`    connecting, and psycopg errors as Transient / Fatal / Config
* :mod:`etl.db.schema`     the tables: DDL as versioned migrations, compression choice
* :mod:`etl.db.ledger`     the ``spool_files`` ledger and the ``load_attempts`` history
* :mod:`etl.db.releases`   the ``releases`` row of a release: read, replace
* :mod:`etl.db.copystream` COPY of spool row groups (binary from Arrow buffers, CSV)
* :mod:`etl.db.url`        which database: ``DATABASE_URL`` or the embedded server
* :mod:`etl.db.embedded`   the embedded PostgreSQL server (data folder, start/stop/status)
* :mod:`etl.db.embedded_root` as root: the server's account, its folders and binaries

None of these opens a transaction: :mod:`etl.load` does, and runs these statements inside.
"""
