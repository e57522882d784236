"""``asynctrack server``: MLflow 3.18's tracking REST API over asynctrack's client and store.

Starlette and uvicorn (the ``asynctrack[server]`` extra) are imported only here, never by
``import asynctrack``. ``_cli.serve`` is what the ``server`` command runs.
"""
