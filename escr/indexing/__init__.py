"""Reading type, dates, identifiers and the child from a document's OCR text."""
