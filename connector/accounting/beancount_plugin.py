"""Find a document posted twice: what ``connector ledger check`` runs on the loaded ledger.

Every transaction the connector writes carries ``document_type`` and ``document_id``
metadata; Beancount's own ``noduplicates`` plugin ignores metadata, so it would not notice the
same document posted twice with another narration. This does. The ledger no longer loads it as
a plugin (it must open in a plain Beancount, with nothing of the connector installed: main files
of earlier versions have their ``plugin "connector.accounting.beancount_plugin"`` line turned
into a comment); it still works as one where the connector is installed.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from beancount.core import data

__plugins__ = ("unique_document_ids",)

DuplicateDocumentError = namedtuple("DuplicateDocumentError", "source message entry")


def unique_document_ids(entries: list[Any], options_map: Any) -> tuple[list[Any], list[Any]]:
    seen: dict[tuple[str, str], Any] = {}
    errors = []
    for entry in entries:
        if not isinstance(entry, data.Transaction):
            continue
        kind, number = entry.meta.get("document_type"), entry.meta.get("document_id")
        if kind is None or number is None:
            continue
        key = (str(kind), str(number))
        if key in seen:
            first = seen[key].meta
            errors.append(
                DuplicateDocumentError(
                    entry.meta,
                    f"{kind} {number} is already in the ledger at "
                    f"{first.get('filename')}:{first.get('lineno')}",
                    entry,
                )
            )
        else:
            seen[key] = entry
    return entries, errors
