"""The web app and REST API for caseworkers, business support and auditors (`escr serve`)."""

from escr.web.app import create_app

__all__ = ["create_app"]
