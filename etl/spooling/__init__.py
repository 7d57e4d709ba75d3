"""The spool's parts behind :mod:`etl.spool` (the stage entry point and facade).

``format`` (the Parquet layout and the file-name scheme), ``rows`` (a release's row groups
and its content hash), ``writer`` (one release file streamed into the store), ``sidecar``
(the failure sidecar), ``memory`` (the incremental-extract memory) and ``store`` (storage
behind one interface: a local folder or S3-compatible object storage).
"""
