"""Splitting a scanned batch into documents at its cover sheets.

A cover sheet starts a document; the sheet itself stays in the as-scanned original but is
not part of the document. Pages before the first sheet (or a file with no sheet at all)
form a document of their own, to be matched from its content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from escr.pages.coversheet import CoverSheet


@dataclass(frozen=True)
class DocumentPlan:
    seq: int  # 1-based within the scanned file
    cover_index: int | None  # 0-based page of the cover sheet in the original
    cover: CoverSheet | None
    pages: tuple[int, ...]  # 0-based pages of the original, in order


@dataclass(frozen=True)
class SplitResult:
    documents: tuple[DocumentPlan, ...]
    empty_covers: tuple[int, ...]  # cover sheets followed directly by another sheet or the end


def split_batch(page_count: int, covers: Mapping[int, CoverSheet]) -> SplitResult:
    documents: list[DocumentPlan] = []
    empty: list[int] = []
    current_cover: int | None = None
    current_pages: list[int] = []

    def close() -> None:
        if current_pages:
            cover = covers.get(current_cover) if current_cover is not None else None
            documents.append(DocumentPlan(len(documents) + 1, current_cover, cover, tuple(current_pages)))
        elif current_cover is not None:
            empty.append(current_cover)

    for index in range(page_count):
        if index in covers:
            close()
            current_cover, current_pages = index, []
        else:
            current_pages.append(index)
    close()
    return SplitResult(tuple(documents), tuple(empty))
