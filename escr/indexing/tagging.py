"""Metadata tags read from a document's OCR text: type, date, identifiers, third-party flag.

Tags are suggestions with a confidence and a source; a person confirms them at indexing.
The document-type rules live in `config/doctypes.yaml` so that a council can tune them
without a code change. Rules are matched to tolerate OCR: a `phrase` is compared with the
text after folding case, dropping spaces and punctuation (so "Strat egy" still reads
"strategy") and folding the usual misreads (1/l/I/i, 0/o, rn/m); long phrases may also
match fuzzily (rapidfuzz). A `regex` is matched as written, case-insensitively, for short
abbreviations that need word boundaries (ICPC, PEP, DSL).
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rapidfuzz import fuzz

from escr.errors import ConfigError
from escr.indexing.identifiers import (
    FoundDate,
    compile_child_id_pattern,
    find_child_ids,
    find_dates,
    find_dates_of_birth,
    find_nhs_numbers,
)

# Labels (escr.indexing.identifiers) that name the document's own date, and those that never do.
DOCUMENT_DATE_LABELS = frozenset({
    "date", "dated", "meeting date", "referral date", "report date", "assessment date",
    "order date", "letter date", "hearing date", "plan date", "date completed", "date signed",
    "date sent", "date issued", "date written",
})
NOT_DOCUMENT_DATE_LABELS = frozenset({"dob", "next meeting", "incident date"})
TAG_DETAIL_CHARS = 512  # the record's tags.detail column (escr.record.models.Tag)
_DOC_DATE_HEAD_CHARS = 1500  # "the first part of the text" for an unlabelled document date


@dataclass(frozen=True)
class Tag:
    """One metadata value with where it came from and how sure we are.

    `detail` says where in the text (character offsets) or why, never the text itself.
    """

    name: str
    value: str
    source: str
    confidence: float
    detail: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"tag confidence out of range for {self.name}")


# --- OCR-tolerant matching ------------------------------------------------------------------

_FUZZY_WINDOW = 65536
_FOLD = str.maketrans({"1": "l", "i": "l", "|": "l", "!": "l", "0": "o"})
_R, _N, _M = ord("r"), ord("n"), ord("m")


_FOLD_SLICE = 1 << 16  # characters of a text folded at a time


def _fold(text: str) -> tuple[str, array[int], dict[int, int]]:
    """Lower-case letters and digits only, OCR look-alikes folded, each char's source span.

    Returns the folded text, per folded character the offset in `text` where its source
    starts, and the exclusive end of the few whose source is longer than one character
    ("rn" folds to one "m" spanning both; every other folded character ends one after its
    start). Each distinct character is folded once and the text mapped through that table in
    numpy: a 300-page file's text is close to a million characters, which a Python step per
    character takes seconds over and a Python object per character tens of megabytes for.
    The text is mapped a slice at a time, each slice's result joined on as it is made: numpy's
    sort and index arrays over the whole of it at once took 30 MB for a moment, the most memory
    any stage of a 300-page file used.
    """
    if not text:
        return "", array("i"), {}
    table = {ch: _fold_char(ch) for ch in set(text)}
    parts: list[str] = []
    offsets = array("i")  # 4 bytes: a text is far shorter than 2**31 characters
    long_ends: dict[int, int] = {}
    done = 0  # folded characters so far
    ends_in_r = False  # the last of them is an "r" that may pair with the next slice's "n"
    for base in range(0, len(text), _FOLD_SLICE):
        code_points = np.frombuffer(text[base:base + _FOLD_SLICE].encode("utf-32-le", "surrogatepass"), dtype="<u4")
        distinct, each = np.unique(code_points, return_inverse=True)
        piece = np.array([table[chr(c)] for c in distinct], dtype="<u4")[each.ravel()]  # 0: dropped
        here = np.flatnonzero(piece)
        folded_cp, starts = piece[here], (here + base).astype(np.int32)
        # "rn" is read as "m" (and vice versa) so often that both sides fold to "m". An "r" then
        # an "n" can never overlap another such pair, so every one merges, across slices too.
        merged = ends_in_r and folded_cp.size > 0 and folded_cp[0] == _N
        if merged:
            parts[-1] = parts[-1][:-1] + "m"
            long_ends[done - 1] = int(starts[0]) + 1
            folded_cp, starts = folded_cp[1:], starts[1:]
        pairs = np.flatnonzero((folded_cp[:-1] == _R) & (folded_cp[1:] == _N))
        if pairs.size:
            folded_cp[pairs] = _M
            ends = starts[pairs + 1] + 1
            folded_cp = np.delete(folded_cp, pairs + 1)
            starts = np.delete(starts, pairs + 1)
            long_ends.update(zip((done + pairs - np.arange(pairs.size)).tolist(), ends.tolist(), strict=True))
        if folded_cp.size:  # parts[-1] always ends with the last folded character
            parts.append(str(memoryview(np.ascontiguousarray(folded_cp)).cast("B"), "utf-32-le"))
            offsets.frombytes(memoryview(np.ascontiguousarray(starts)).cast("B"))
            done += folded_cp.size
            ends_in_r = bool(folded_cp[-1] == _R)
        elif merged:
            ends_in_r = False
    return "".join(parts), offsets, long_ends


def _fold_char(ch: str) -> int:
    """The code point one character folds to; 0 for a character that is dropped.
    One folded character per source character: "İ".lower() is "i" and a combining dot."""
    if not (ch.isalnum() or ch in "|!"):
        return 0
    return ord(ch.lower()[0].translate(_FOLD))


@dataclass(frozen=True)
class _FoldedText:
    """A text folded once for all the phrase rules, with how much of it is the title area."""

    text: str
    folded: str
    offsets: Sequence[int]  # where each folded character starts in `text`
    long_ends: Mapping[int, int]  # where a folded character ends in `text`, if not one after it starts
    title_len: int  # folded characters that come from the title area

    @classmethod
    def of(cls, text: str, title_chars: int) -> _FoldedText:
        folded, starts, long_ends = _fold(text)
        # The first folded character that ends past the title area (ends only grow).
        n = bisect_left(starts, title_chars)
        if n > 0 and long_ends.get(n - 1, 0) > title_chars:
            n -= 1
        return cls(text, folded, starts, long_ends, n)

    def end(self, k: int) -> int:
        return self.long_ends.get(k, self.offsets[k] + 1)

    def is_word_start(self, k: int) -> bool:
        off = self.offsets[k]
        return off == 0 or not self.text[off - 1].isalnum()

    def is_word_end(self, k: int) -> bool:
        end = self.end(k)
        return end >= len(self.text) or not self.text[end].isalnum()


@dataclass(frozen=True)
class DocTypeRule:
    """One piece of evidence for a document type (or for third-party content)."""

    id: str
    weight: float
    phrase: str | None = None  # folded form, see `_fold`
    regex: re.Pattern[str] | None = None
    title_only: bool = False

    def find(self, text: _FoldedText, *, fuzzy_min_score: float, fuzzy_min_length: int,
             title_chars: int) -> tuple[int, bool] | None:
        """(character offset, in title area) of the first match, title area preferred."""
        if self.regex is not None:
            m = self.regex.search(text.text, 0, title_chars)
            if m:
                return m.start(), True
            if self.title_only:
                return None
            m = self.regex.search(text.text)
            return (m.start(), False) if m else None
        assert self.phrase is not None
        hit = self._find_phrase(text, 0, text.title_len, fuzzy_min_score, fuzzy_min_length)
        if hit is not None:
            return text.offsets[hit], True
        if self.title_only:
            return None
        hit = self._find_phrase(text, 0, len(text.folded), fuzzy_min_score, fuzzy_min_length)
        return (text.offsets[hit], hit < text.title_len) if hit is not None else None

    def _find_phrase(self, text: _FoldedText, lo: int, hi: int, min_score: float,
                     min_length: int) -> int | None:
        phrase = self.phrase or ""
        k = text.folded.find(phrase, lo, hi)
        while k >= 0:
            if text.is_word_start(k) and text.is_word_end(k + len(phrase) - 1):
                return k
            k = text.folded.find(phrase, k + 1, hi)
        if len(phrase) < min_length or hi - lo < len(phrase):
            return None
        return _closest_alignment(phrase, text.folded, lo, hi, min_score)


def _closest_alignment(phrase: str, folded: str, lo: int, hi: int, min_score: float) -> int | None:
    """Where the best fuzzy match of `phrase` in `folded[lo:hi]` starts, if one scores `min_score`.

    rapidfuzz needs about ten bytes for every character it searches, so a 300-page text is
    searched `_FUZZY_WINDOW` characters at a time, the windows overlapping by the phrase's
    length so that every match lies whole in one of them. A window's cut ends are padded with
    a character folding never yields: a match hanging over a cut scores no better there than
    it does in the whole text. Of equally good matches in different windows, the earlier is kept.
    """
    best: tuple[float, int] | None = None
    pad = "\0" * len(phrase)
    start = lo
    while start < hi:
        stop = min(hi, start + _FUZZY_WINDOW + len(phrase))
        left, right = (pad if start > lo else ""), (pad if stop < hi else "")
        found = fuzz.partial_ratio_alignment(phrase, left + folded[start:stop] + right,
                                             score_cutoff=min_score if best is None else best[0])
        if found is not None and (best is None or found.score > best[0]):
            best = (found.score, max(start, start - len(left) + found.dest_start))
        if stop >= hi:
            break
        start = stop - len(phrase)
    return best[1] if best is not None else None


@dataclass(frozen=True)
class DocType:
    code: str
    label: str
    rules: tuple[DocTypeRule, ...]
    keep_original: bool  # the paper must not be destroyed after scanning
    ocr_expected: bool  # False where no text is expected (drawings): legibility QC skipped
    third_party_default: bool  # reports from police/health/school hold third-party information


@dataclass(frozen=True)
class DocTypeCatalogue:
    """The configured document types and third-party phrases, with the scoring knobs.

    Only the first `scan_chars` characters are read for the type: it shows on the first
    pages, and long OCR texts stay cheap to score.
    """

    types: Mapping[str, DocType]
    third_party: tuple[DocTypeRule, ...] = ()
    title_chars: int = 400
    title_weight: float = 2.0
    scan_chars: int = 20000
    confident_score: float = 6.0
    fuzzy_min_score: float = 90.0
    fuzzy_min_length: int = 12

    def _fold(self, text: str) -> _FoldedText:
        return _FoldedText.of(text[: self.scan_chars], self.title_chars)

    def _find(self, rule: DocTypeRule, text: _FoldedText) -> tuple[int, bool] | None:
        return rule.find(text, fuzzy_min_score=self.fuzzy_min_score,
                         fuzzy_min_length=self.fuzzy_min_length, title_chars=self.title_chars)

    def scores(self, text: str) -> list[tuple[str, float, str, int]]:
        """(code, score, best rule id, its offset) for every type that scores, best first."""
        folded = self._fold(text)
        results = []
        for code, doc_type in self.types.items():
            score, best = 0.0, None
            for rule in doc_type.rules:
                hit = self._find(rule, folded)
                if hit is None:
                    continue
                points = rule.weight * (self.title_weight if hit[1] else 1.0)
                score += points
                if best is None or points > best[0]:
                    best = (points, rule.id, hit[0])
            if score > 0 and best is not None:
                results.append((code, score, best[1], best[2]))
        return sorted(results, key=lambda r: (-r[1], r[0]))

    def classify(self, text: str) -> Tag | None:
        """The best-scoring type; confidence is strength times the margin over the runner-up."""
        ranked = self.scores(text)
        if not ranked:
            return None
        code, best, rule_id, offset = ranked[0]
        runner = ranked[1] if len(ranked) > 1 else None
        second = runner[1] if runner else 0.0
        strength = min(1.0, best / self.confident_score)
        margin = (best - second) / best
        confidence = round(strength * (0.5 + 0.5 * margin), 3)
        detail = f"offset={offset}; score={best:.1f}"
        if runner:
            detail += f"; runner_up={runner[0]}:{second:.1f}"
        return Tag("doc_type", code, f"rule:{rule_id}", confidence, detail)

    def third_party_flag(self, text: str) -> Tag | None:
        """A third_party tag when a configured phrase matches; confidence from their weights.

        The whole text is searched, not only `scan_chars`: a "not to be disclosed" footer on
        the last page counts.
        """
        folded = _FoldedText.of(text, self.title_chars)
        hits = [(rule, hit) for rule in self.third_party if (hit := self._find(rule, folded))]
        if not hits:
            return None
        total = sum(rule.weight for rule, _ in hits)
        if total <= 0:
            return None
        rule = max(hits, key=lambda h: h[0].weight)[0]
        return Tag("third_party", "true", f"rule:{rule.id}", round(min(1.0, total), 3),
                   offsets_detail(sorted(h[1][0] for h in hits)))


# --- loading and validating doctypes.yaml ---------------------------------------------------


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_.\-]+$")
    phrase: str | None = None
    regex: str | None = None
    weight: float = 1.0
    where: Literal["anywhere", "title"] = "anywhere"

    @field_validator("weight")
    @classmethod
    def _nonzero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("weight must not be 0")
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> _RuleModel:
        if (self.phrase is None) == (self.regex is None):
            raise ValueError("give exactly one of 'phrase' or 'regex'")
        if self.phrase is not None and not _fold(self.phrase)[0]:
            raise ValueError("phrase has no letters or digits")
        if self.regex is not None:
            try:
                re.compile(self.regex, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
        return self

    def build(self) -> DocTypeRule:
        return DocTypeRule(
            id=self.id,
            weight=self.weight,
            phrase=_fold(self.phrase)[0] if self.phrase is not None else None,
            regex=re.compile(self.regex, re.IGNORECASE | re.MULTILINE) if self.regex else None,
            title_only=self.where == "title",
        )


class _TypeModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    rules: list[_RuleModel] = Field(min_length=1)
    keep_original: bool = False
    ocr_expected: bool = True
    third_party_default: bool = False


class _ThirdPartyModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[_RuleModel] = Field(min_length=1)


class _CatalogueModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    title_chars: int = Field(400, gt=0)
    title_weight: float = Field(2.0, ge=1.0)
    scan_chars: int = Field(20000, gt=0)
    confident_score: float = Field(6.0, gt=0)
    fuzzy_min_score: float = Field(90.0, ge=50.0, le=100.0)
    fuzzy_min_length: int = Field(12, ge=4)
    types: list[_TypeModel] = Field(min_length=1)
    third_party: _ThirdPartyModel

    @model_validator(mode="after")
    def _unique(self) -> _CatalogueModel:
        codes = [t.code for t in self.types]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"document type codes used twice: {', '.join(dupes)}")
        ids = [r.id for t in self.types for r in t.rules] + [r.id for r in self.third_party.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids used twice: {', '.join(dupes)}")
        return self

    def build(self) -> DocTypeCatalogue:
        types = {
            t.code: DocType(t.code, t.label, tuple(r.build() for r in t.rules), t.keep_original,
                            t.ocr_expected, t.third_party_default)
            for t in self.types
        }
        return DocTypeCatalogue(
            types=MappingProxyType(types),
            third_party=tuple(r.build() for r in self.third_party.rules),
            title_chars=self.title_chars,
            title_weight=self.title_weight,
            scan_chars=self.scan_chars,
            confident_score=self.confident_score,
            fuzzy_min_score=self.fuzzy_min_score,
            fuzzy_min_length=self.fuzzy_min_length,
        )


def load_doctypes(path: Path) -> DocTypeCatalogue:
    """Read and validate the document-type catalogue; any problem is one clear ConfigError."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"document types file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"document types file cannot be read: {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"document types file is not valid YAML{at}: {path}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"document types file must be a mapping with 'types': {path}")
    try:
        return _CatalogueModel.model_validate(raw).build()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid document types file {path}: {problems}") from exc


# --- tagging a text -------------------------------------------------------------------------


def _document_date(dates: Sequence[FoundDate], today: date) -> Tag | None:
    """The document's own date: a labelled one first, else the first plain date near the top."""
    dob_values = {d.value for d in dates if d.label == "dob"}
    usable = [d for d in dates if d.value <= today and d.value not in dob_values
              and d.label not in NOT_DOCUMENT_DATE_LABELS]
    for d in usable:
        if d.label in DOCUMENT_DATE_LABELS:
            conf = 0.9 if d.start < _DOC_DATE_HEAD_CHARS else 0.8
            return Tag("doc_date", d.value.isoformat(), "text", conf,
                       f"offset={d.start}; label={d.label}")
    for d in usable:
        if d.start < _DOC_DATE_HEAD_CHARS:
            label = f"; label={d.label}" if d.label else ""
            return Tag("doc_date", d.value.isoformat(), "text", 0.6, f"offset={d.start}{label}")
    return None


def _identifier_tags(name: str, found: Sequence[tuple[str, int]], confidence: float) -> list[Tag]:
    """One tag per distinct value, with every offset it was seen at."""
    offsets: dict[str, list[int]] = {}
    for value, start in found:
        offsets.setdefault(value, []).append(start)
    return [Tag(name, value, "text", confidence, offsets_detail(starts)) for value, starts in offsets.items()]


def offsets_detail(starts: Sequence[int]) -> str:
    """Where a tag was seen, short enough for the record however often it recurs.

    A long file whose every page header carries the child's NHS number repeats it hundreds of
    times; the first offsets and the count say as much as all of them, and the detail column
    (TAG_DETAIL_CHARS) must not refuse the document."""
    shown: list[str] = []
    for start in starts:
        if len("offsets=") + len(",".join([*shown, str(start)])) > TAG_DETAIL_CHARS - 32:
            break
        shown.append(str(start))
    more = len(starts) - len(shown)
    return "offsets=" + ",".join(shown) + (f"; {more} more, {len(starts)} in all" if more else "")


def tag_text(text: str, *, catalogue: DocTypeCatalogue, child_id_pattern: str,
             today: date, declared_type: str | None = None) -> list[Tag]:
    """All the tags the text supports: doc_type, doc_date, identifiers and third_party.

    `declared_type` is the type a cover sheet names: the text's own guess is still tagged, but
    a type's third-party default follows the declared type, since that is what the paper is; a
    care plan whose prose reads like a health report is not another agency's report for it.
    """
    compile_child_id_pattern(child_id_pattern)  # a bad pattern is a ConfigError, not a miss
    tags: list[Tag] = []
    doc_type = catalogue.classify(text)
    if doc_type is not None:
        tags.append(doc_type)
    dates = find_dates(text, today=today)
    doc_date = _document_date(dates, today)
    if doc_date is not None:
        tags.append(doc_date)
    tags += _identifier_tags(
        "child_id", [(f.value, f.start) for f in find_child_ids(text, child_id_pattern)], 0.9)
    tags += _identifier_tags(
        "nhs_number", [(f.value, f.start) for f in find_nhs_numbers(text)], 0.95)
    tags += _identifier_tags(
        "date_of_birth",
        [(d.value.isoformat(), d.start) for d in find_dates_of_birth(text, today=today)], 0.9)
    third_party = catalogue.third_party_flag(text)
    if declared_type:
        kind, source, confidence = catalogue.types.get(declared_type), "coversheet", 1.0
    elif doc_type is not None:
        kind, source, confidence = catalogue.types[doc_type.value], doc_type.source, doc_type.confidence
    else:
        kind, source, confidence = None, "", 0.0
    if third_party is None and kind is not None and kind.third_party_default:
        third_party = Tag("third_party", "true", source, confidence, f"default for doc type {kind.code}")
    if third_party is not None:
        tags.append(third_party)
    return tags
