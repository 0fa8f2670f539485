"""Embedded Responses-API-compatible image search server (``pip install ".[server]"``)."""
