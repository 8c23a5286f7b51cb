"""Running at scale: Celery tasks, who OCRs the pages, metrics and health."""
