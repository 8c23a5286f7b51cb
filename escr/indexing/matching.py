"""Linking a document to a child from what its text says, never by a silent guess.

A document links to a child only when exactly one child is identified by strong evidence:
the child's local id or NHS number in the text, or a date of birth in the text together with
both the child's family name and one of the given names (compared fuzzily, because OCR misreads
letters). When the evidence points to two or more children (siblings' ids on one letter, an
id of one child and the NHS number of another, twins sharing a date of birth and surname) the
result is "ambiguous" and nothing is linked: a person chooses from the candidates. Cover-sheet
linking is done by the pipeline, not here.

Reasons and notes say what kind of evidence was seen and where (offsets, child ids), never
names, dates of birth or NHS numbers: they may be logged.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from rapidfuzz import fuzz, process

from escr.indexing.tagging import Tag

NAME_MIN_SCORE = 85.0  # rapidfuzz ratio after OCR folding: "Whitfleld" ~ "Whitfield", not "Whitman"
# Joined runs of words ("Whit field") must be closer: joining neighbours makes near misses
# ("Name Isla" joined holds every letter of "Amelia" in order).
SPLIT_NAME_MIN_SCORE = 92.0

_SCORE_ID = 1.0
_SCORE_NHS = 1.0
_SCORE_NAME_DOB = 0.9  # scaled by how well the names matched
_SCORE_DOB_FAMILY = 0.4  # date of birth and family name but no given name
_SCORE_DOB_ONLY = 0.2
_MIN_SPLIT_NAME = 6
_CHUNK_WORDS = 4096  # folded words per string held by `_TextWords`

_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")  # O'Neil, also with a curly apostrophe
_NAME_FOLD = str.maketrans({"1": "l", "i": "l", "|": "l", "0": "o", "5": "s"})


@dataclass(frozen=True)
class ChildRecord:
    child_id: str
    given_names: str
    family_name: str
    date_of_birth: date | None
    nhs_number: str | None


@dataclass(frozen=True)
class Candidate:
    child_id: str
    reasons: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class MatchResult:
    linked: tuple[str, ...]  # child ids to link (empty if none or ambiguous)
    candidates: tuple[Candidate, ...]  # everything considered, best first
    status: str  # "linked" | "ambiguous" | "no_match"
    basis: str  # "child_id" | "nhs_number" | "name_dob" | ""
    notes: tuple[str, ...] = ()  # evidence that led nowhere, e.g. an id not in the index


class ChildLookup(Protocol):
    """The child index, searched by what a document's text can show."""

    def by_ids(self, ids: Sequence[str]) -> list[ChildRecord]: ...

    def by_nhs(self, numbers: Sequence[str]) -> list[ChildRecord]: ...

    def by_dobs(self, dates: Sequence[date]) -> list[ChildRecord]: ...


class InMemoryChildLookup:
    """A ChildLookup over a list of records, for tests and small callers."""

    def __init__(self, records: Iterable[ChildRecord]) -> None:
        self._records = tuple(records)

    def by_ids(self, ids: Sequence[str]) -> list[ChildRecord]:
        wanted = set(ids)
        return [r for r in self._records if r.child_id in wanted]

    def by_nhs(self, numbers: Sequence[str]) -> list[ChildRecord]:
        wanted = {re.sub(r"\D", "", n) for n in numbers}
        return [r for r in self._records
                if r.nhs_number and re.sub(r"\D", "", r.nhs_number) in wanted]

    def by_dobs(self, dates: Sequence[date]) -> list[ChildRecord]:
        wanted = set(dates)
        return [r for r in self._records if r.date_of_birth in wanted]


# --- names in text --------------------------------------------------------------------------


def _fold_name(word: str) -> str:
    """A name or word folded so common OCR misreads compare equal (1/l/i, 0/o, rn/m)."""
    return re.sub(r"[^a-z]", "", word.lower().translate(_NAME_FOLD).replace("rn", "m"))


@dataclass(frozen=True)
class _TextWords:
    """The text's words, folded; also runs of two or three words, as OCR splits long words.

    A 300-page file has over 100,000 words and twice as many runs: as Python strings they cost
    tens of megabytes while a document is matched. So words and runs are kept as a few long
    strings of `_CHUNK_WORDS` each, space-separated, and split a chunk at a time as the fuzzy
    match asks for them (a folded word has letters only).
    """

    words: tuple[str, ...]  # chunks of words
    runs: tuple[str, ...]  # chunks of every two adjacent words joined, then of every three
    offsets: Sequence[int]  # where each word starts in the text

    @classmethod
    def of(cls, text: str) -> _TextWords:
        words: list[str] = []
        offsets: array[int] = array("i")  # 4 bytes an offset, not a Python int
        pending: list[str] = []
        for m in _WORD_RE.finditer(text):
            word = _fold_name(m.group())
            if word:
                pending.append(word)
                offsets.append(m.start())
                if len(pending) == _CHUNK_WORDS:
                    words.append(" ".join(pending))
                    pending.clear()
        if pending:
            words.append(" ".join(pending))
        runs: list[str] = []
        for size in (2, 3):
            carry: list[str] = []  # the previous chunk's last words, for runs across chunks
            for chunk in words:
                joined = carry + chunk.split(" ")
                found = ["".join(joined[i:i + size]) for i in range(len(joined) - size + 1)]
                if found:
                    runs.append(" ".join(found))
                carry = joined[-(size - 1):]
        return cls(tuple(words), tuple(runs), offsets)

    def run_offset(self, index: int) -> int:
        """Where run `index` starts: its first word's offset (pairs come first, then threes)."""
        pairs = max(0, len(self.offsets) - 1)
        return self.offsets[index if index < pairs else index - pairs]

    @staticmethod
    def _closest(folded: str, chunks: tuple[str, ...], cutoff: float) -> tuple[float, int] | None:
        """(score, index) of the first of the closest choices, as one `extractOne` over them all."""
        best: tuple[float, int] | None = None
        base = 0
        for chunk in chunks:
            choices = chunk.split(" ")
            hit = process.extractOne(folded, choices, scorer=fuzz.ratio,
                                     score_cutoff=cutoff if best is None else best[0])
            if hit and (best is None or hit[1] > best[0]):
                best = (hit[1], base + hit[2])
            base += len(choices)
        return best

    def best(self, name: str) -> tuple[float, int] | None:
        """(score, offset) of the closest word to `name`, if close enough.

        Runs of words are tried only for names of six letters or more, and must be closer:
        joined short words ("a" + "my") would otherwise pass for short names ("Amy").
        """
        folded = _fold_name(name)
        if not folded:
            return None
        hits = []
        word = self._closest(folded, self.words, NAME_MIN_SCORE)
        if word:
            hits.append((word[0], self.offsets[word[1]]))
        if len(folded) >= _MIN_SPLIT_NAME:
            run = self._closest(folded, self.runs, SPLIT_NAME_MIN_SCORE)
            if run:
                hits.append((run[0], self.run_offset(run[1])))
        return max(hits, key=lambda h: h[0]) if hits else None


def _given_name_hit(words: _TextWords, given_names: str) -> tuple[float, int] | None:
    hits = [h for part in given_names.split() if (h := words.best(part))]
    return max(hits) if hits else None


# --- evidence -------------------------------------------------------------------------------


@dataclass
class _Evidence:
    record: ChildRecord
    kinds: set[str] = field(default_factory=set)  # strong kinds: child_id, nhs_number, name_dob
    medium: bool = False  # date of birth and family name, no given name
    reasons: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def add(self, kind: str | None, score: float, reason: str) -> None:
        if kind:
            self.kinds.add(kind)
        self.scores.append(score)
        self.reasons.append(reason)

    def candidate(self) -> Candidate:
        miss = 1.0
        for s in self.scores:
            miss *= 1.0 - s
        return Candidate(self.record.child_id, tuple(self.reasons), round(1.0 - miss, 3))

    @property
    def basis(self) -> str:
        for kind in ("child_id", "nhs_number", "name_dob"):
            if kind in self.kinds:
                return kind
        return ""


def _offsets(tag: Tag) -> str:
    return (tag.detail or "").removeprefix("offsets=").removeprefix("offset=")


def _tag_values(tags: Sequence[Tag], name: str) -> dict[str, Tag]:
    """Distinct values of one tag name, first tag kept (for its offsets)."""
    found: dict[str, Tag] = {}
    for tag in tags:
        if tag.name == name:
            found.setdefault(tag.value, tag)
    return found


def _dob_evidence(ev: _Evidence, words: _TextWords) -> None:
    record = ev.record
    family = words.best(record.family_name)
    given = _given_name_hit(words, record.given_names)
    if family and given:
        score = _SCORE_NAME_DOB * (family[0] + given[0]) / 200.0
        ev.add("name_dob", score,
               f"date of birth in text matches; family name at offset {family[1]} "
               f"(score {family[0]:.0f}) and given name at offset {given[1]} "
               f"(score {given[0]:.0f})")
    elif family:
        ev.medium = True
        ev.add(None, _SCORE_DOB_FAMILY,
               f"date of birth in text matches; family name at offset {family[1]} "
               f"(score {family[0]:.0f}) but no given name found")
    else:
        ev.add(None, _SCORE_DOB_ONLY, "date of birth in text matches; name not found")


def match_child(tags: Sequence[Tag], text: str, lookup: ChildLookup) -> MatchResult:
    """Which child the document is about, from its child_id/nhs_number/date_of_birth tags."""
    evidence: dict[str, _Evidence] = {}
    notes: list[str] = []

    def ev_for(record: ChildRecord) -> _Evidence:
        return evidence.setdefault(record.child_id, _Evidence(record))

    ids = _tag_values(tags, "child_id")
    if ids:
        records = lookup.by_ids(sorted(ids))
        for record in records:
            if record.child_id in ids:
                ev_for(record).add("child_id", _SCORE_ID,
                                   f"child id in text at offset {_offsets(ids[record.child_id])}")
        known = {r.child_id for r in records}
        notes += [f"child id {cid} in text at offset {_offsets(tag)} is not in the child index"
                  for cid, tag in ids.items() if cid not in known]

    numbers = _tag_values(tags, "nhs_number")
    if numbers:
        records = lookup.by_nhs(sorted(numbers))
        matched = set()
        for record in records:
            number = re.sub(r"\D", "", record.nhs_number or "")
            if number in numbers:
                matched.add(number)
                ev_for(record).add("nhs_number", _SCORE_NHS,
                                   f"NHS number in text at offset {_offsets(numbers[number])}")
        notes += [f"an NHS number in text at offset {_offsets(tag)} is not in the child index"
                  for number, tag in numbers.items() if number not in matched]

    dobs = {}
    for value, tag in _tag_values(tags, "date_of_birth").items():
        try:
            dobs[date.fromisoformat(value)] = tag
        except ValueError:
            notes.append(f"a date of birth tag at offset {_offsets(tag)} is not an ISO date")
    if dobs:
        words = _TextWords.of(text)
        for record in lookup.by_dobs(sorted(dobs)):
            if record.date_of_birth in dobs:
                _dob_evidence(ev_for(record), words)

    ranked = sorted(evidence.values(), key=lambda e: (-e.candidate().score, e.record.child_id))
    candidates = tuple(e.candidate() for e in ranked)
    strong = [e for e in ranked if e.kinds]
    if len(strong) == 1:
        return MatchResult((strong[0].record.child_id,), candidates, "linked", strong[0].basis,
                           tuple(notes))
    if len(strong) > 1 or sum(1 for e in ranked if e.medium) > 1:
        return MatchResult((), candidates, "ambiguous", "", tuple(notes))
    return MatchResult((), candidates, "no_match", "", tuple(notes))
