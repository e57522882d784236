"""PostgreSQL in MLflow 3.18's own schema (issue #16), so MLflow's client, server and UI share
the database with asynctrack.

Today it holds the schema (schema.py, schema.sql): created in an empty database exactly as
MLflow's alembic chain leaves it, accepted as it is where MLflow made it, refused at any other
revision. The store itself (writes through asyncpg, blocking reads through psycopg 3) and the
``postgresql://`` tracking URIs come next; until then store_for_uri refuses such URIs. Nothing
here imports a PostgreSQL driver at import time: they are the optional ``postgres`` extra.
"""
