"""`make bench`: throughput, memory and retrieval benchmarks of escr against Tesseract itself
and OCRmyPDF (issue 6).

Not part of the test suite: nothing here is named test_*.py and pytest does not recurse into
this folder. Run with `make bench` (or `.venv/bin/python -m bench`); see
`bench/config.py` for the BENCH_* variables and bench/README.md for what is measured.
"""
