# TEMPORARY local stand-in until the pg-bulk branch lands (not committed)
from .._sql.lifecycle import UPSERT_TAG
from .._sql.batch import sort_out, params_wanted
from .._sql.rules import latest_in_order, NAN_MARK
from .. import _sql
from ... import events as ev
async def prepare_connection(conn): pass
async def apply_metric_block(conn, block, outcomes):
    await apply_logging(conn, list(block), 0, len(block), outcomes)
async def apply_logging(conn, records, start, stop, outcomes):
    ids = list({r[2] for r in records[start:stop]})
    stages = dict(await conn.fetch("SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid = ANY($1)", ids))
    params = {}
    for run_id, keys in params_wanted(records, start, stop).items():
        for k, v in await conn.fetch("SELECT key, value FROM params WHERE run_uuid = $1 AND key = ANY($2)", run_id, list(keys)):
            params[(run_id, k)] = v
    got = sort_out(records, start, stop, stages, params, outcomes)
    rows = [(r[3], r[4], r[5], r[6], r[0]==NAN_MARK, r[2]) for r in got.metric_rows]
    for run_id, ms in got.batch_groups:
        rows += [(k, v, t, s, False, run_id) for k, v, t, s in ms]
    if rows:
        await conn.executemany("INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING", rows)
    for (run_id, key), r in latest_in_order(records, got.accepted).items():
        await conn.execute("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (key, run_uuid) DO UPDATE SET value=excluded.value, timestamp=excluded.timestamp, step=excluded.step, is_nan=excluded.is_nan WHERE (excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)", r[3], r[4], r[5], r[6], r[0]==NAN_MARK, r[2])
    if got.param_rows:
        await conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING", got.param_rows)
    if got.name_rows:
        await conn.executemany("UPDATE runs SET name = $1 WHERE run_uuid = $2", got.name_rows)
    if got.tag_rows:
        await conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES ($1,$2,$3) ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value", got.tag_rows)
