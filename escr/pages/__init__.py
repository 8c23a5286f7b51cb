"""Page work: images, OCR, cover sheets, splitting, image QC and the searchable copy."""
