"""The application layer: every use case once, under the access rules; the faces call it."""
