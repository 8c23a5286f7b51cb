"""Proving what happened: fixity checks, anchors, paper custody, audits, certificates."""
