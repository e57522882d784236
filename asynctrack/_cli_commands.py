"""The commands of ``asynctrack`` (click), in MLflow's style: a group, one function a command."""

from __future__ import annotations

import os

import click


@click.group()
def cli() -> None:
    """asynctrack: an MLflow-compatible experiment tracker."""


@cli.command()
@click.argument("spools", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--tracking-uri",
    default=None,
    help="The store to write to (default: the one each spool file was written for).",
)
@click.option("--delete", is_flag=True, help="Remove each spool file once all of it is stored.")
def replay(spools: tuple[str, ...], tracking_uri: str | None, delete: bool) -> int:
    """Store the records of spool files (written when a store could not be reached).

    Replaying is idempotent: records already stored are not stored twice, so a spool can be
    replayed again after an interrupted or partly failed replay.
    """
    from ._replay import replay_spool
    from .writer import flush_all

    worst = 0
    for path in spools:
        report = replay_spool(path, tracking_uri)
        click.echo(
            f"{path}: {report.read} records read, {report.stored} stored in "
            f"{report.tracking_uri}, {len(report.failed)} refused."
        )
        for index, record, error in report.failed[:20]:
            click.echo(f"  record #{index} {record}: {error}", err=True)
        if len(report.failed) > 20:
            click.echo(f"  ... and {len(report.failed) - 20} more refused records", err=True)
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
        if report.ok and delete:
            os.remove(path)
            click.echo(f"  removed {path}")
        if not report.ok:
            worst = 1
    flush_all()
    return worst


# MLflow server flags that have no meaning for asynctrack's server: refused with the reason.
_UNSUPPORTED_SERVER_FLAGS = {
    "gunicorn_opts": ("--gunicorn-opts", "asynctrack server runs on uvicorn only"),
    "waitress_opts": ("--waitress-opts", "asynctrack server runs on uvicorn only"),
    "uvicorn_opts": ("--uvicorn-opts", "asynctrack server sets uvicorn's options itself"),
    "dev": ("--dev", "there is no development mode"),
    "registry_store_uri": ("--registry-store-uri", "asynctrack has no model registry"),
    "workspace_store_uri": ("--workspace-store-uri", "asynctrack has no workspaces"),
    "enable_workspaces": ("--enable-workspaces", "asynctrack has no workspaces"),
    "artifacts_presigned_only": ("--artifacts-presigned-only", "artifacts are served from a local directory"),
    "static_prefix": ("--static-prefix", "routes are served at MLflow's default paths only"),
    "expose_prometheus": ("--expose-prometheus", "there is no Prometheus exporter"),
    "app_name": ("--app-name", "there are no MLflow app plugins"),
    "allowed_hosts": ("--allowed-hosts", "there is no host-header middleware; bind with --host"),
    "cors_allowed_origins": ("--cors-allowed-origins", "CORS is not served (there is no UI)"),
    "x_frame_options": ("--x-frame-options", "there is no UI"),
    "trace_archival_config": ("--trace-archival-config", "asynctrack has no traces"),
}


def _unsupported_option(name: str, flag: bool = False):
    return click.option(
        _UNSUPPORTED_SERVER_FLAGS[name][0],
        name,
        is_flag=flag,
        default=None,
        hidden=True,
        expose_value=True,
    )


@cli.command()
@click.option("--backend-store-uri", envvar="MLFLOW_BACKEND_STORE_URI", metavar="URI", default=None,
              help="The store: sqlite:///path.db or postgresql://user@host/db (default: sqlite:///mlflow.db).")
@click.option("--read-replica-backend-store-uri", envvar="MLFLOW_READ_REPLICA_BACKEND_STORE_URI",
              metavar="URI", default=None,
              help="A read replica of a PostgreSQL --backend-store-uri (a streaming standby): "
                   "searches and metric histories are read there, everything else on the primary.")
@click.option("--default-artifact-root", envvar="MLFLOW_DEFAULT_ARTIFACT_ROOT", metavar="URI", default=None,
              help="Artifact root of new experiments (default: mlflow-artifacts:/ when serving "
                   "artifacts, else ./mlruns).")
@click.option("--serve-artifacts/--no-serve-artifacts", envvar="MLFLOW_SERVE_ARTIFACTS", default=True,
              help="Serve the mlflow-artifacts endpoints from --artifacts-destination (default: on).")
@click.option("--artifacts-only", envvar="MLFLOW_ARTIFACTS_ONLY", is_flag=True, default=False,
              help="Serve only the artifact endpoints.")
@click.option("--artifacts-destination", envvar="MLFLOW_ARTIFACTS_DESTINATION", metavar="URI",
              default="./mlartifacts", help="Local directory of served artifacts (default: ./mlartifacts).")
@click.option("--host", "-h", envvar="MLFLOW_HOST", metavar="HOST", default="127.0.0.1",
              help="The interface to bind (default: 127.0.0.1, this machine only).")
@click.option("--port", "-p", envvar="MLFLOW_PORT", type=int, default=5000, help="Port (default: 5000).")
@click.option("--workers", "-w", envvar="MLFLOW_WORKERS", type=int, default=None,
              help="Worker processes, each with its own writer on the one store (default: 1, one "
                   "writer whose commits every connection shares; MLflow's default is 4, but more "
                   "writers only contend for SQLite's one write lock: see README).")
@click.option("--basic-auth-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Require HTTP basic auth: a file of user:password lines "
                   "(or set ASYNCTRACK_SERVER_BASIC_AUTH=user:password).")
@click.option("--max-request-bytes", type=click.IntRange(1024), default=None,
              help="Largest JSON request body accepted (default: 16 MiB).")
@click.option("--max-artifact-bytes", type=click.IntRange(1), default=None,
              help="Largest artifact upload accepted, streamed to disk (default: 5 GiB).")
@_unsupported_option("gunicorn_opts")
@_unsupported_option("waitress_opts")
@_unsupported_option("uvicorn_opts")
@_unsupported_option("dev", flag=True)
@_unsupported_option("registry_store_uri")
@_unsupported_option("workspace_store_uri")
@_unsupported_option("enable_workspaces", flag=True)
@_unsupported_option("artifacts_presigned_only", flag=True)
@_unsupported_option("static_prefix")
@_unsupported_option("expose_prometheus")
@_unsupported_option("app_name")
@_unsupported_option("allowed_hosts")
@_unsupported_option("cors_allowed_origins")
@_unsupported_option("x_frame_options")
@_unsupported_option("trace_archival_config")
def server(
    backend_store_uri: str | None,
    read_replica_backend_store_uri: str | None,
    default_artifact_root: str | None,
    serve_artifacts: bool,
    artifacts_only: bool,
    artifacts_destination: str,
    host: str,
    port: int,
    workers: int | None,
    basic_auth_file: str | None,
    max_request_bytes: int | None,
    max_artifact_bytes: int | None,
    **unsupported: object,
) -> int:
    """Run a tracking server: MLflow 3.18's REST API over asynctrack's store.

    MLflow's own client (any language's) and asynctrack clients on other machines log into
    one SQLite store through it, every write answered once it is durable.
    """
    for name, value in unsupported.items():
        if value:
            flag, why = _UNSUPPORTED_SERVER_FLAGS[name]
            raise click.UsageError(f"{flag} is not supported by asynctrack server: {why}.")
    from .server._auth import load_credentials
    from .server._cli import ServerUsageError, local_destination, resolve_default_artifact_root, serve
    from .server._context import DEFAULT_MAX_ARTIFACT_BYTES, DEFAULT_MAX_JSON_BYTES, ServerConfig

    try:
        users = load_credentials(basic_auth_file)
        config = ServerConfig(
            backend_store_uri=backend_store_uri or "sqlite:///mlflow.db",
            read_replica_backend_store_uri=read_replica_backend_store_uri or None,
            default_artifact_root=resolve_default_artifact_root(serve_artifacts, default_artifact_root),
            serve_artifacts=serve_artifacts,
            artifacts_destination=local_destination(artifacts_destination),
            artifacts_only=artifacts_only,
            max_json_bytes=max_request_bytes or DEFAULT_MAX_JSON_BYTES,
            max_artifact_bytes=max_artifact_bytes or DEFAULT_MAX_ARTIFACT_BYTES,
            basic_auth=users,
        )
        if not backend_store_uri:
            click.echo(f"Backend store URI not provided. Using {config.backend_store_uri}")
        serve(config, host, port, 1 if workers is None else workers)
    except (ServerUsageError, ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from None
    return 0
