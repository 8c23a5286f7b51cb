"""The pipelines: ordered stages a scan or the store goes through (installed as escr.pipelines)."""
