"""Serializers for what the log_* calls turn into files: dicts, figures, images, tables.

Each module imports its third-party library inside its functions only.
"""
