"""The source side of extract: everything about reading a wheel-collections source.

One concern per module:

* :mod:`~etl.source.client`: :class:`SourceClient`: the index, the release listing pages
  and single documents, with every rule of the protocol (origins, schemes, size limit);
* :mod:`~etl.source.transport`: HTTP(S): one ``requests`` session, redirects one hop at a
  time, the token per origin, retries through :mod:`etl.backoff`;
* :mod:`~etl.source.files`: the folder / ``file://`` source;
* :mod:`~etl.source.responses`: THE one mapping of an HTTP status to body, 304, redirect,
  retry or failure, plus ``Retry-After``, ``Content-Length`` and validators;
* :mod:`~etl.source.budget`: the cap on body bytes held in memory;
* :mod:`~etl.source.documents`: validation of ``release.json`` and the JSON documents,
  and the field checks the other documents share;
* :mod:`~etl.source.wheels`: ``wheels.json`` to drops (a short path for known-good names);
* :mod:`~etl.source.wheelname`: the wheel file name rules;
* :mod:`~etl.source.origins`: the unit of trust for credentials (token per origin);
* :mod:`~etl.source.jsontext`: strict JSON decoding (msgspec first, json as the reference);
* :mod:`~etl.source.constraints`: constraints.txt to the stored JSON array;
* :mod:`~etl.source.deadline`: the overall deadline per document, and cancelling fetches;
* :mod:`~etl.source.stats`: request counters;
* :mod:`~etl.source.gitlab`: :class:`GitLabSource`: GitLab releases whose asset links are
  fromager tarballs (``gitlab+https://`` source URLs), read through the same transport;
* :mod:`~etl.source.tarball` and :mod:`~etl.source.gunzip`: one ``.tar.gz`` read as a
  stream (documents kept, wheels hashed as they go by);
* :mod:`~etl.source.choose`: :func:`open_source`, the source a URL names.
"""

from __future__ import annotations

from etl.protocol import INDEX_FORMAT
from etl.source.budget import ByteBudget
from etl.source.choose import Source, open_source
from etl.source.client import Document, ProductRef, ReleaseRef, SourceClient, normalize_base
from etl.source.gitlabsource import GitLabSource
from etl.source.responses import Validators

__all__ = [
    "INDEX_FORMAT",
    "ByteBudget",
    "Document",
    "GitLabSource",
    "ProductRef",
    "ReleaseRef",
    "Source",
    "SourceClient",
    "Validators",
    "normalize_base",
    "open_source",
]
