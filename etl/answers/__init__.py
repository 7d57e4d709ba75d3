"""Answers over what load stored: ``search``, ``diff`` and ``why`` (read-only queries).

Each command is one library function returning its versioned JSON document
(``wheels-etl/search/1``, ``wheels-etl/diff/1``, ``wheels-etl/why/1``; see ``docs/``) and
renderers for people; ``etl/cli.py`` calls them.
"""
