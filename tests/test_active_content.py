"""Active PDF content (issue 20): a scan carrying JavaScript, actions, form fields, attached and
embedded files, Screen, multimedia and 3D annotations is filed with a reading copy that holds
none of it; preflight says what was left out, the certificate repeats it, and the original is
kept byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from escr.pages.coversheet import CoverSheet
from escr.provenance.certificate import build_report, render_html
from escr.record.events import Actor
from escr.record.models import Document, Event
from tests.support.intake import ingest
from tests.support.scans import coversheet_page, degrade, text_page, write_pdf

pytestmark = pytest.mark.ocr

A6 = (4.13, 5.83)
FORBIDDEN_KEYS = {"/JS", "/JavaScript", "/AA", "/OpenAction", "/AcroForm", "/EmbeddedFiles", "/EmbeddedFile",
                  "/FS", "/RichMediaContent", "/3DD", "/Launch", "/Names", "/Collection", "/Movie", "/Sound"}
FORBIDDEN_SUBTYPES = {"/Widget", "/FileAttachment", "/Screen", "/RichMedia", "/3D", "/Movie", "/Sound", "/Link"}


def js(pdf: pikepdf.Pdf, code: str) -> pikepdf.Object:
    return pdf.make_indirect(Dictionary(Type=Name.Action, S=Name.JavaScript, JS=String(code)))


def hostile(clean: Path, out: Path) -> Path:
    """The clean scan with every kind of active content an attacker put in one."""
    with pikepdf.open(clean) as pdf:
        executable = pdf.make_stream(b"MZ\x90\x00 not really a program", Type=Name.EmbeddedFile)
        filespec = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=String("run.exe"),
                                                EF=Dictionary(F=executable)))
        pdf.Root.OpenAction = js(pdf, "app.alert('opened')")
        pdf.Root.AA = Dictionary(WC=js(pdf, "app.alert('closing')"))
        pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("start"), js(pdf, "app.alert(1)")])),
                                    EmbeddedFiles=Dictionary(Names=Array([String("run.exe"), filespec])))
        rect = Array([10, 10, 60, 60])
        widget = pdf.make_indirect(Dictionary(
            Type=Name.Annot, Subtype=Name.Widget, FT=Name.Btn, T=String("go"), Rect=rect,
            A=Dictionary(S=Name.Launch, F=String("cmd.exe"), Win=Dictionary(F=String("cmd.exe"))),
            AA=Dictionary(E=js(pdf, "app.alert('hover')"))))
        pdf.Root.AcroForm = Dictionary(Fields=Array([widget]))
        annots = [
            widget,
            pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.FileAttachment, Rect=rect, FS=filespec)),
            pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Screen, Rect=rect,
                                         A=Dictionary(S=Name.Rendition, JS=String("app.alert('screen')")))),
            pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.RichMedia, Rect=rect,
                                         RichMediaContent=Dictionary(Assets=Dictionary(Names=Array([String("a"), filespec]))))),
            pdf.make_indirect(Dictionary({"/Type": Name.Annot, "/Subtype": Name("/3D"), "/Rect": rect,
                                          "/3DD": pdf.make_stream(b"U3D", Type=Name("/3D"), Subtype=Name("/U3D"))})),
            pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Text, Rect=rect, Contents=String("a note"))),
        ]
        for page in pdf.pages:
            page.obj.AA = Dictionary(O=js(pdf, "app.alert('page open')"))
            page.obj.Annots = Array(annots)
        pdf.save(out)
    return out


def walk(obj: object, seen: set) -> list[pikepdf.Object]:
    """Every dictionary reachable from `obj`."""
    found = []
    if isinstance(obj, pikepdf.Object) and obj.is_indirect:
        if obj.objgen in seen:
            return found
        seen.add(obj.objgen)
    if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
        found.append(obj)
        for key in obj.keys():
            if key != "/Parent" or isinstance(obj, pikepdf.Stream) or obj.get("/Type") != "/Page":
                found += walk(obj[key], seen)
    elif isinstance(obj, pikepdf.Array):
        for item in obj:
            found += walk(item, seen)
    return found


def test_the_reading_copy_holds_nothing_that_acts_and_the_certificate_says_what_went(with_children, tmp_path):
    services = with_children
    page = degrade(text_page(["Letter to the family", "Date: 12 January 2026", "Thank you for meeting us."],
                             dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=3)
    clean = write_pdf([coversheet_page(CoverSheet("B-ACTIVE01", ("AB123456",), "correspondence", 1), dpi=300), page],
                      tmp_path / "clean.pdf")
    scan = hostile(clean, tmp_path / "hostile.pdf")

    result = ingest(services, scan)
    assert result.status == "filed", result
    (doc,) = result.documents
    with services.db.session() as session:
        row = session.get(Document, doc["id"])
        with services.store.open(row.searchable_key) as fh:
            reading = fh.read()
        with services.store.open(row.batch.original_key) as fh:
            assert fh.read() == scan.read_bytes()  # the original keeps its bytes
        preflight = session.query(Event).filter(Event.kind == "preflight").one()
        removed = preflight.detail["parameters"]["active_content_removed"]

    with pikepdf.open(io.BytesIO(reading)) as pdf:
        everything = walk(pdf.trailer, set())
        keys = {str(k) for d in everything for k in d.keys()}
        subtypes = {str(d.get("/Subtype")) for d in everything if d.get("/Type") == "/Annot"}
        strings = b"".join(bytes(v) for d in everything for v in d.values() if isinstance(v, pikepdf.String))
        assert not keys & FORBIDDEN_KEYS, keys & FORBIDDEN_KEYS
        assert not subtypes & FORBIDDEN_SUBTYPES and subtypes == {"/Text"}  # harmless markup stays
        assert b"cmd.exe" not in strings and b"app.alert" not in strings
        assert b"MZ\x90\x00" not in reading and b"app.alert" not in reading
        assert len(pdf.pages) == 1

    for what in ("JavaScript", "actions that launch a program", "an action run when the document opens",
                 "form fields", "embedded files", "attached files", "Screen annotations", "multimedia",
                 "3D content", "page actions", "document actions"):
        assert what in removed, (what, removed)
    report = build_report(services, actor=Actor(kind="user", name="auditor.li"), document_id=doc["id"])
    html = render_html(report)
    assert "left out of the reading copies" in html and "actions that launch a program" in html


def test_a_clean_scan_says_no_active_content_was_found(with_children, tmp_path):
    services = with_children
    page = degrade(text_page(["Referral", "Date: 3 March 2026", "The school is worried."],
                             dpi=300, size_inches=A6, font_pt=11), noise=0.0003, seed=4)
    clean = write_pdf([coversheet_page(CoverSheet("B-ACTIVE02", ("AB123456",), "referral", 1), dpi=300), page],
                      tmp_path / "clean.pdf")
    (doc,) = ingest(services, clean).documents
    report = build_report(services, actor=Actor(kind="user", name="auditor.li"), document_id=doc["id"])
    assert report["scans"][0]["settings"]["active_content_removed"] == []
    assert "none found" in render_html(report)
