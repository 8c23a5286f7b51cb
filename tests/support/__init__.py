"""What the tests share: scan builders, databases, S3 servers, the OCR cache and the web world."""
