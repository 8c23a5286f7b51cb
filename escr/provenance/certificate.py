"""The certificate of scanning: a document's, a scan's or a child's provenance for an auditor.

One JSON export (the data), rendered as HTML (Jinja2) and PDF (reportlab) from the same dict, so
the three never disagree. It holds what an auditor, inspector or court needs to rely on the
image instead of the paper: the original file's hash, operator, device, scanner settings,
software versions, each QC check with its numbers, indexer, verifier, storage location and
version, retention date, the paper's custody and disposition, every protocol event with its
chain position and hash, the anchor covering them, a fresh fixity check, and how to verify all
of it independently with `sha256sum`. Ids only for children: no names, no OCR text.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from escr import __version__
from escr.clock import iso
from escr.errors import EscrError, InvalidState, NotFound
from escr.provenance import anchors as anchor_io
from escr.provenance import paper
from escr.provenance.checks import Scope
from escr.record import payloads
from escr.record.events import AccessEvent, Actor, Kind, canonical, payload_of, record
from escr.record.models import (
    Batch,
    ChainAnchor,
    ChainHead,
    Child,
    Document,
    DocumentChild,
    Event,
    PaperDisposition,
    ScannerCheck,
)
from escr.services import Services

FORMATS = ("json", "html", "pdf")



# --- gathering -----------------------------------------------------------------------------------


def _scope_documents(session: Session, *, document_id: str | None, batch: str | None,
                     child_id: str | None) -> tuple[dict[str, str], list[Document]]:
    if sum(v is not None for v in (document_id, batch, child_id)) != 1:
        raise InvalidState("name exactly one of a document, a batch or a child")
    if document_id is not None:
        doc = session.get(Document, document_id)
        if doc is None:
            raise NotFound(f"no document {document_id}")
        return {"document": document_id}, [doc]
    if child_id is not None:
        if session.get(Child, child_id) is None:
            raise NotFound(f"no child {child_id} in the child index")
        docs = list(session.scalars(select(Document).join(DocumentChild, DocumentChild.document_id == Document.id)
                                    .where(DocumentChild.child_id == child_id)))
        return {"child": child_id}, sorted(docs, key=lambda d: (d.doc_date is None, d.doc_date or date.min, d.id))
    assert batch is not None
    if session.get(Batch, batch) is not None:
        return {"scan": batch}, list(session.get(Batch, batch).documents)
    docs = list(session.scalars(select(Document).where(Document.coversheet_batch_id == batch).order_by(Document.id)))
    if not docs:
        raise NotFound(f"no scan or cover-sheet batch {batch}")
    return {"cover_batch": batch}, docs


def _event_dict(e: Event) -> dict[str, Any]:
    payload = canonical(payload_of(e)).decode()
    return {"id": e.id, "at": iso(e.at), "kind": e.kind, "actor": e.actor, "actor_kind": e.actor_kind,
            "outcome": e.outcome, "prev_hash": e.prev_hash, "hash": e.hash, "canonical_payload": payload,
            "hash_input": e.prev_hash + payload}


def _events(session: Session, doc: Document) -> list[Event]:
    return list(session.scalars(
        select(Event).where(Event.category == "protocol")
        .where((Event.document_id == doc.id) | ((Event.batch_id == doc.batch_id) & Event.document_id.is_(None)))
        .order_by(Event.id)))


def _last_of(events: Sequence[Event], kind: str) -> Event | None:
    found = [e for e in events if e.kind == kind]
    return found[-1] if found else None


def _stored(services: Services, key: str, sha256: str) -> dict[str, Any]:
    try:
        stat = services.store.stat(key)
    except EscrError:
        stat = None
    return {"key": key, "sha256": sha256, "location": stat.location if stat else None,
            "version": stat.version if stat else None, "present": stat is not None,
            "size_bytes": stat.size if stat else None}


def active_content(removed: Sequence[str] | None) -> str:
    """What the certificate says about active content preflight found (and the reading copy left out)."""
    if removed is None:
        return "not recorded (filed before preflight listed it)"
    return ("left out of the reading copies (the original keeps it): " + ", ".join(removed)) if removed \
        else "none found"


def _settings_used(events: Sequence[Event]) -> dict[str, Any]:
    """Scanner and OCR settings as the log recorded them: per page dpi, colour, encoding."""
    preflight = _last_of(events, Kind.PREFLIGHT)
    params = payloads.read(payloads.Preflight, preflight.detail.get("parameters")) if preflight else None
    if params is None:
        return {"media_type": None, "producer": None, "pages": [], "notes": [], "active_content_removed": None}
    return {"media_type": params.media_type, "producer": params.producer,
            "pages": [p.model_dump() for p in params.pages], "notes": params.notes,
            "active_content_removed": params.active_content_removed}


def _ocr_used(events: Sequence[Event]) -> str:
    """The OCR run of one document as the log recorded it: language, and per page dpi and confidence."""
    ocr = _last_of(events, Kind.OCR)
    params = payloads.read(payloads.Ocr, ocr.detail.get("parameters")) if ocr else None
    if params is None:
        return "-"
    pages = "; ".join(f"page {p.index + 1}: {p.dpi} dpi, rotation {p.rotation}, "
                      f"mean confidence {p.mean_conf}, {p.words} words" for p in params.pages)
    return f"{params.language}; {pages}"


def _document_section(session: Session, services: Services, doc: Document, today: date) -> dict[str, Any]:
    events = _events(session, doc)
    indexed = _last_of(events, "indexed")
    verified = _last_of(events, "verified")
    accepted = _last_of(events, "qc_accepted")
    status = paper.status_of(session, doc.id, catalogue=services.doctypes, settings=services.settings.provenance,
                             today=today)
    disposition = session.get(PaperDisposition, doc.id)
    label = services.doctypes.types.get(doc.doc_type or "")
    return {
        "id": doc.id, "seq": doc.seq, "doc_type": doc.doc_type, "doc_type_label": label.label if label else None,
        "doc_date": iso(doc.doc_date), "page_count": doc.page_count, "declared_pages": doc.declared_pages,
        "original_pages": {"first": doc.first_page + 1, "last": doc.last_page + 1,
                           "cover": None if doc.cover_page is None else doc.cover_page + 1},
        "cover_batch_id": doc.coversheet_batch_id, "state": doc.state,
        "children": sorted(c.child_id for c in doc.children),
        "links": [{"child_id": c.child_id, "basis": c.basis, "linked_by": c.linked_by, "linked_at": iso(c.linked_at)}
                  for c in doc.children],
        "qc": [{"check": q.check, "status": q.status, "numbers": q.numbers, "message": q.message}
               for q in doc.qc_results],
        "indexer": {"by": doc.indexed_by, "at": iso(indexed.at) if indexed else None,
                    "event_id": indexed.id if indexed else None},
        "verifier": {"by": doc.verified_by, "at": iso(doc.verified_at), "event_id": verified.id if verified else None},
        "qc_accepted": {"by": accepted.actor, "at": iso(accepted.at), "event_id": accepted.id} if accepted else None,
        "storage": {"searchable": _stored(services, doc.searchable_key, doc.searchable_sha256),
                    "manifest": _stored(services, doc.manifest_key, doc.manifest_sha256)},
        "ocr": _ocr_used([e for e in events if e.document_id == doc.id]),
        "retention_until": iso(doc.retention_until),
        "paper": {**status.as_dict(), "qa_hold_days": services.settings.provenance.qa_hold_days,
                  "disposition": None if disposition is None else {
                      "action": disposition.action, "on": iso(disposition.at), "by": disposition.by,
                      "method": disposition.method, "certificate_ref": disposition.certificate_ref,
                      "returned_to": disposition.returned_to, "recorded_by": disposition.recorded_by}},
        "events": [_event_dict(e) for e in events],
    }


def _custody(session: Session, refs: Sequence[str]) -> list[dict[str, Any]]:
    moves = []
    for ref in dict.fromkeys(r for r in refs if r):
        for m in paper.custody(session, ref):
            moves.append({"move_id": m.id, "paper_ref": m.paper_ref, "purpose": m.purpose, "sender": m.sender,
                          "recipient": m.recipient, "moved_at": iso(m.moved_at), "authorised_by": m.authorised_by,
                          "due_back": iso(m.due_back), "confirmed_by": m.confirmed_by,
                          "confirmed_at": iso(m.confirmed_at)})
    return moves


def _scanner_check(session: Session, batch: Batch, docs: list[Document]) -> dict[str, Any]:
    """The scanner check (protocol step 1) the documents' QC cited: the device's passing check that day."""
    results = [q for d in docs for q in d.qc_results if q.check == "scanner_check"]
    ids = [q.numbers.get("check_id") for q in results if q.numbers.get("check_id")]
    row = session.get(ScannerCheck, max(ids)) if ids else None
    if row is None:
        why = ("no passing scanner check of this device was recorded that day" if results
               else "not recorded (filed before scanner checks were part of QC)")
        return {"check_id": None, "device": batch.device, "summary": why}
    m = row.measures or {}
    return {"check_id": row.id, "device": row.device, "day": row.day.isoformat(), "passed": row.passed,
            "checked_by": row.checked_by, "checked_at": iso(row.checked_at), "target_scan_sha256": row.scan_sha256,
            "target_scan_key": row.scan_key, "measures": m,
            "summary": f"check {row.id} of {row.device} on {row.day.isoformat()} by {row.checked_by}: "
                       f"{'passed' if row.passed else 'failed'} (effective {m.get('effective_dpi')} dpi, "
                       f"skew {m.get('skew_deg')} degrees, OCR character error rate {m.get('cer')}); "
                       f"target scan SHA-256 {row.scan_sha256}"}


def _scan_section(session: Session, services: Services, batch: Batch, docs: list[Document],
                  today: date) -> dict[str, Any]:
    events = _events(session, docs[0]) if docs else []
    received = _last_of(events, "received")
    versions = payloads.read(payloads.Software, received.detail.get("software")) if received else None
    software = versions.as_json() if versions else {}
    return {
        "scan_id": batch.id, "sha256": batch.sha256, "size_bytes": batch.size_bytes, "media_type": batch.media_type,
        "page_count": batch.page_count, "received_at": iso(batch.received_at), "filed_at": iso(batch.filed_at),
        "operator": batch.operator, "device": batch.device, "producer": batch.producer,
        "scanner_check": _scanner_check(session, batch, docs),
        "cover_batch_ids": list(batch.cover_batch_ids or []),
        "original": _stored(services, batch.original_key, batch.sha256),
        "settings": _settings_used(events), "software": software,
        "paper_custody": _custody(session, [*(batch.cover_batch_ids or []), batch.id]),
        "documents": [_document_section(session, services, d, today) for d in docs],
    }


def _newest_anchor(session: Session, services: Services) -> dict[str, Any] | None:
    """The newest anchor: it seals every event up to the one it names (later ones: the next anchor)."""
    row = session.scalars(select(ChainAnchor).order_by(ChainAnchor.event_id.desc(), ChainAnchor.id.desc())
                          .limit(1)).first()
    if row is None:
        return None
    try:
        with services.store.open(row.object_key) as fh:
            stored = anchor_io.parse_anchor(row.object_key, fh.read(), anchor_io.anchor_key(services.settings))
    except EscrError:
        stored = anchor_io.StoredAnchor(row.object_key, None, "unreadable")
    body = stored.anchor.body() if stored.anchor else None
    return {"key": row.object_key, "location": row.location, "event_id": row.event_id, "head_hash": row.head_hash,
            "event_count": row.event_count, "created_at": iso(row.created_at), "method": row.method,
            "digest": row.digest, "seal": "holds" if stored.problem is None else stored.problem,
            "hash_input": canonical(body).decode() if body else None}


def _how_to_verify(report: dict[str, Any]) -> list[str]:
    steps = []
    for scan in report["scans"]:
        steps.append(f"Original scan {scan['scan_id']}: fetch it (escr get DOC --original -o scan.bin, or copy "
                     f"{scan['original']['location'] or scan['original']['key']}) and run `sha256sum scan.bin`; "
                     f"it must print {scan['sha256']}.")
        for doc in scan["documents"]:
            steps.append(f"Reading copy of {doc['id']}: `escr get {doc['id']} -o doc.pdf; sha256sum doc.pdf` must print "
                         f"{doc['storage']['searchable']['sha256']}.")
    steps += [
        "Each event: its hash is the SHA-256 of the previous event's hash immediately followed by the event's "
        "canonical payload (JSON, sorted keys, no spaces, UTF-8); the JSON export gives that text as `hash_input`. "
        "Save it without a trailing newline and run sha256sum, e.g. "
        "`jq -j '.scans[0].documents[0].events[0].hash_input' certificate.json | sha256sum`: it must print the "
        "event's `hash`, and each `prev_hash` must be the hash of the event before it in the log.",
        "Anchor: the anchor object in the store names an event and its hash; for method sha256, "
        "`jq -j '.anchor.hash_input' certificate.json | sha256sum` must print the anchor's digest (for "
        "hmac-sha256, `openssl dgst -sha256 -hmac KEY` with the anchor key); the named event's hash must equal "
        "the anchor's head_hash.",
        "The whole chain, every object and the protocol steps: `escr fixity --json` (exit code 0: no findings).",
    ]
    return steps


def build_report(services: Services, *, actor: Actor, document_id: str | None = None, batch: str | None = None,
                 child_id: str | None = None, today: date | None = None) -> dict[str, Any]:
    """Run a fresh fixity check over the scope, then gather the certificate; one access event per child."""
    from escr.pipelines import fixity as fixity_pipeline

    today = today or datetime.now(UTC).date()
    with services.db.session() as session:
        scope, docs = _scope_documents(session, document_id=document_id, batch=batch, child_id=child_id)
        scan_ids = list(dict.fromkeys(d.batch_id for d in docs))
    checks = [fixity_pipeline.run(services, s, actor=actor, trigger="report") for s in _check_scopes(scope, scan_ids)]
    with services.db.session() as session:
        scope, docs = _scope_documents(session, document_id=document_id, batch=batch, child_id=child_id)
        scans = []
        for scan_id in scan_ids:
            batch_row = session.get(Batch, scan_id)
            scans.append(_scan_section(session, services, batch_row, [d for d in docs if d.batch_id == scan_id], today))
        anchor = _newest_anchor(session, services)
        for event in (e for s in scans for d in s["documents"] for e in d["events"]):
            event["anchored"] = anchor is not None and event["id"] <= anchor["event_id"]
        head = session.get(ChainHead, 1)
        report = {
            "title": "Certificate of scanning", "scope": scope, "generated_at": iso(datetime.now(UTC)),
            "generated_by": actor.name, "escr_version": __version__,
            "summary": {"scans": len(scans), "documents": sum(len(s["documents"]) for s in scans),
                        "pages": sum(d["page_count"] for s in scans for d in s["documents"])},
            "verification": {"ok": all(c.ok for c in checks), "runs": [c.run_id for c in checks],
                             "findings": [f.as_dict() for c in checks for f in c.findings],
                             "checked": {"events": sum(c.tally.events_checked for c in checks),
                                         "objects": sum(c.tally.objects_checked for c in checks),
                                         "bytes": sum(c.tally.bytes_read for c in checks)},
                             "notes": [n for c in checks for n in c.tally.notes]},
            "chain": {"head_event_id": head.last_event_id if head else None,
                      "head_hash": head.last_hash if head else None},
            "anchor": anchor,
            "scans": scans,
        }
        for child in sorted({c for d in docs for c in (x.child_id for x in d.children)}) or [None]:
            record(session, AccessEvent(actor=actor, action="provenance", child_id=child, document_id=document_id,
                                        parameters={"report": scope}))
    report["how_to_verify"] = _how_to_verify(report)
    return report


def _check_scopes(scope: dict[str, str], scan_ids: list[str]) -> list[Scope]:
    if "document" in scope:
        return [Scope(document_id=scope["document"])]
    if "child" in scope:
        return [Scope(child_id=scope["child"])]
    return [Scope(scan_id=s) for s in scan_ids]


# --- rendering -----------------------------------------------------------------------------------


def _numbers(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in numbers.items())


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("escr.provenance", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["numbers"] = _numbers
    env.filters["active_content"] = active_content
    return env


def render_html(report: dict[str, Any]) -> str:
    return _environment().get_template("certificate.html.j2").render(r=report)


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"


def write_report(report: dict[str, Any], fmt: str, output: Path) -> Path:
    if fmt not in FORMATS:
        raise InvalidState(f"format must be one of {', '.join(FORMATS)}")
    data = render_pdf(report) if fmt == "pdf" else (render_html(report) if fmt == "html" else render_json(report)).encode()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(data)
    except OSError as exc:
        raise InvalidState(f"cannot write the report: {exc.strerror}") from exc
    return output


# --- PDF (reportlab) -----------------------------------------------------------------------------

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _fonts() -> tuple[str, str, str]:
    """(regular, bold, mono): DejaVu when installed (any name prints), else the PDF base fonts."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    files = {"EscrSans": "DejaVuSans.ttf", "EscrSans-Bold": "DejaVuSans-Bold.ttf", "EscrMono": "DejaVuSansMono.ttf"}
    if all((_DEJAVU / f).is_file() for f in files.values()):
        for name, file in files.items():
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(_DEJAVU / file)))
        return "EscrSans", "EscrSans-Bold", "EscrMono"
    return "Helvetica", "Helvetica-Bold", "Courier"


def render_pdf(report: dict[str, Any]) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold, mono = _fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=10.5)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9)
    code = ParagraphStyle("code", parent=body, fontName=mono, fontSize=6.3, leading=7.6)
    h1 = ParagraphStyle("h1", parent=body, fontName=bold, fontSize=15, leading=19, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=body, fontName=bold, fontSize=11.5, leading=14, spaceBefore=8, spaceAfter=3)
    h3 = ParagraphStyle("h3", parent=body, fontName=bold, fontSize=9.5, leading=12, spaceBefore=6, spaceAfter=2)
    width = A4[0] - 30 * mm

    def p(value: Any, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape("" if value is None else str(value)), style)

    def grid(rows: list[list[Any]], widths: list[float], header: bool = False) -> Table:
        table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
        style = [("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")))
        table.setStyle(TableStyle(style))
        return table

    def facts(pairs: list[tuple[str, Any, ParagraphStyle]]) -> Table:
        return grid([[p(k, small), p(v, s)] for k, v, s in pairs], [38 * mm, width - 38 * mm])

    story: list[Any] = [p(report["title"], h1)]
    scope = ", ".join(f"{k} {v}" for k, v in report["scope"].items())
    verification = report["verification"]
    story.append(facts([
        ("Scope", scope, body), ("Generated", f"{report['generated_at']} by {report['generated_by']}", body),
        ("escr version", report["escr_version"], body),
        ("Contents", f"{report['summary']['scans']} scan(s), {report['summary']['documents']} document(s), "
                     f"{report['summary']['pages']} page(s)", body),
        ("Fixity check", ("passed: no findings" if verification["ok"] else
                          f"FAILED: {len(verification['findings'])} finding(s)")
         + f" (run {', '.join(str(r) for r in verification['runs'])}; {verification['checked']['events']} events, "
           f"{verification['checked']['objects']} objects checked)", body),
        ("Chain head", f"event {report['chain']['head_event_id']}", body),
        ("Chain head hash", report["chain"]["head_hash"], code),
    ]))
    for finding in verification["findings"]:
        story.append(p(f"Finding {finding['code']}: {finding['what']} - {finding['where']} - since "
                       f"{finding['since'] or 'unknown'} {finding['since_basis']}", small))
    for scan in report["scans"]:
        story.append(p(f"Scan {scan['scan_id']}", h2))
        story.append(facts([
            ("Original SHA-256", scan["sha256"], code), ("Size", f"{scan['size_bytes']} bytes", body),
            ("Media type / pages", f"{scan['media_type']}, {scan['page_count']} pages", body),
            ("Received / filed", f"{scan['received_at']} / {scan['filed_at']}", body),
            ("Operator", scan["operator"], body), ("Device", scan["device"], body),
            ("Scanner check", scan["scanner_check"]["summary"], body),
            ("Producer", scan["producer"], body),
            ("Active content", active_content(scan["settings"]["active_content_removed"]), body),
            ("Stored at", scan["original"]["location"] or scan["original"]["key"], code),
            ("Version", scan["original"]["version"] or "-", body),
            ("Software", ", ".join(f"{k} {v}" for k, v in sorted(scan["software"].items())), body),
        ]))
        pages = scan["settings"]["pages"]
        if pages:
            story.append(p("Scanner settings per page", h3))
            story.append(grid([[p(h, small) for h in ("page", "dpi", "colour", "encoding", "size (pt)")]]
                              + [[p(pg.get("index", 0) + 1, small), p(pg.get("dpi"), small), p(pg.get("colour"), small),
                                  p(pg.get("encoding"), small), p(pg.get("size_pt"), small)] for pg in pages],
                              [15 * mm, 35 * mm, 30 * mm, 35 * mm, width - 115 * mm], header=True))
        if scan["paper_custody"]:
            story.append(p("Custody of the paper", h3))
            story.append(grid([[p(h, small) for h in ("move", "paper", "from", "to", "moved", "arrival confirmed")]]
                              + [[p(m["move_id"], small), p(m["paper_ref"], small), p(m["sender"], small),
                                  p(m["recipient"], small), p(m["moved_at"], small),
                                  p(f"{m['confirmed_by']} {m['confirmed_at']}" if m["confirmed_at"]
                                    else "NOT CONFIRMED", small)]
                                 for m in scan["paper_custody"]],
                              [12 * mm, 25 * mm, 28 * mm, 28 * mm, 40 * mm, width - 133 * mm], header=True))
        for doc in scan["documents"]:
            story.append(p(f"Document {doc['id']}", h2))
            paper_info = doc["paper"]
            disposition = paper_info["disposition"]
            story.append(facts([
                ("Type / date",
                 f"{doc['doc_type_label'] or doc['doc_type'] or '-'} / {doc['doc_date'] or 'undated'}", body),
                ("Pages", f"{doc['page_count']} (original pages {doc['original_pages']['first']}-"
                          f"{doc['original_pages']['last']}; declared {doc['declared_pages'] or '-'})", body),
                ("Children", ", ".join(doc["children"]) or "-", body), ("State", doc["state"], body),
                ("Indexer", f"{doc['indexer']['by'] or '-'} {doc['indexer']['at'] or ''}", body),
                ("Verifier", f"{doc['verifier']['by'] or '-'} {doc['verifier']['at'] or ''}", body),
                ("OCR", doc["ocr"], body),
                ("Reading copy SHA-256", doc["storage"]["searchable"]["sha256"], code),
                ("Reading copy stored at",
                 doc["storage"]["searchable"]["location"] or doc["storage"]["searchable"]["key"], code),
                ("Manifest SHA-256", doc["storage"]["manifest"]["sha256"], code),
                ("Retention until", doc["retention_until"] or "keep (date not yet known)", body),
                ("Paper", f"{paper_info['status']}: {paper_info['reason']}"
                          + (f"; certificate {disposition['certificate_ref']}, method {disposition['method']}"
                             if disposition and disposition["action"] == "destroyed" else ""), body),
            ]))
            story.append(p("Quality checks", h3))
            story.append(grid([[p(h, small) for h in ("check", "result", "numbers")]]
                              + [[p(q["check"], small), p(q["status"], small), p(_numbers(q["numbers"]), small)]
                                 for q in doc["qc"]],
                              [30 * mm, 15 * mm, width - 45 * mm], header=True))
            story.append(p("Protocol events (chain positions and hashes)", h3))
            story.append(grid([[p(h, small) for h in ("#", "when", "step", "by", "hash")]]
                              + [[p(e["id"], small), p(e["at"][:19].replace("T", " "), small), p(e["kind"], small),
                                  p(e["actor"], small), p(e["hash"], code)] for e in doc["events"]],
                              [11 * mm, 30 * mm, 24 * mm, 24 * mm, width - 89 * mm], header=True))
            sealed = [e["id"] for e in doc["events"] if e["anchored"]]
            story.append(p(f"Events up to #{max(sealed)} are sealed by the anchor below; later ones will be by the "
                           "next anchor." if sealed else "None of these events is anchored yet.", small))
    anchor = report["anchor"]
    story.append(p("Anchor", h2))
    if anchor:
        story.append(facts([("Anchor object", anchor["location"] or anchor["key"], code),
                            ("Anchored event", f"event {anchor['event_id']} ({anchor['event_count']} events), "
                                               f"{anchor['created_at']}", body),
                            ("Anchored hash", anchor["head_hash"], code),
                            ("Seal", f"{anchor['method']}: {anchor['seal']}", body), ("Digest", anchor["digest"], code)]))
    else:
        story.append(p("Not yet anchored: the next anchor will seal these events.", body))
    story.append(p("How to verify this independently", h2))
    for i, step in enumerate(report["how_to_verify"], start=1):
        story.append(p(f"{i}. {step}", small))
        story.append(Spacer(1, 2))
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                      bottomMargin=15 * mm, title=report["title"], author="escr").build(story)
    return buffer.getvalue()
