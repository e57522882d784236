"""MLflow's write rules, shared by the SQL stores: no SQL and no driver in here.

``rules``: what MLflow stores and refuses, with its exact error texts (lifecycle checks, param
immutability, the stored form of NaN and ±inf, which point ``latest_metrics`` keeps, the run
name mirrored in its tag). ``batch``: those rules applied to a run of logging records, given
what the store read for them (run stages, params already logged). A store adds its SQL text,
its bulk mechanics and its connection handling, nothing more.

``search_sql``: search_runs / search_experiments as dialect-neutral SQL (MLflow's filter and
order_by compiled to one query, page tokens, the experiment search); a store gives its
``Dialect`` (LIKE/ILIKE/IN spelling, join keyword, placeholders) and runs the query its way.
"""
