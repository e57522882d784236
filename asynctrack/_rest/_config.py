"""How to reach a tracking server: MLflow's host credentials and HTTP settings, from MLflow's
own environment variables with MLflow's defaults, limits and error messages
(``mlflow/utils/credentials.py``, ``rest_utils.py``, ``environment_variables.py``)."""

from __future__ import annotations

import base64
import configparser
import os
from dataclasses import dataclass

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # MLflow's retry codes
UNPROCESSED_STATUSES = frozenset({408, 429})  # what MLflow retries for a non-idempotent POST
RETRY_AFTER_STATUSES = frozenset({413, 429, 503})  # urllib3's Retry.RETRY_AFTER_STATUS_CODES
BACKOFF_MAX_S = 120.0  # urllib3's Retry.DEFAULT_BACKOFF_MAX


def _env_typed(name: str, type_: type, default):
    """MLflow's _EnvironmentVariable.get: the typed value, or its ValueError."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return type_(raw)
    except Exception as exc:
        raise ValueError(f"Failed to convert {raw!r} for {name}: {exc}") from None


def _env_bool(name: str, default: bool) -> bool:
    """MLflow's _BooleanEnvironmentVariable.get."""
    if name not in os.environ:
        return default
    val = os.environ[name]
    if val.lower() not in ("true", "false", "1", "0"):
        raise ValueError(
            f"{name} value must be one of ['true', 'false', '1', '0'] (case-insensitive), "
            f"but got {val}"
        )
    return val.lower() in ("true", "1")


def _env_str(name: str) -> str | None:
    return os.environ.get(name)


def _credentials_file() -> tuple[str | None, str | None]:
    """~/.mlflow/credentials, section [mlflow], as MLflow reads it."""
    path = os.path.expanduser("~/.mlflow/credentials")
    if not os.path.exists(path):
        return None, None
    config = configparser.ConfigParser()
    config.read(path)
    if "mlflow" not in config:
        return None, None
    section = config["mlflow"]
    return section.get("mlflow_tracking_username"), section.get("mlflow_tracking_password")


@dataclass(frozen=True)
class RestConfig:
    """One server's address, authentication, TLS and retry settings."""

    host: str
    authorization: str | None
    verify: bool | str
    client_cert: str | None
    timeout: float
    max_retries: int
    backoff_factor: float
    backoff_jitter: float
    respect_retry_after: bool

    @classmethod
    def from_env(cls, host: str) -> "RestConfig":
        """MLflow's get_default_host_creds plus http_request's settings, read now."""
        file_user, file_password = _credentials_file()
        username = _env_str("MLFLOW_TRACKING_USERNAME") or file_user
        password = _env_str("MLFLOW_TRACKING_PASSWORD") or file_password
        token = _env_str("MLFLOW_TRACKING_TOKEN")
        insecure = _env_bool("MLFLOW_TRACKING_INSECURE_TLS", False)
        server_cert = _env_str("MLFLOW_TRACKING_SERVER_CERT_PATH")
        client_cert = _env_str("MLFLOW_TRACKING_CLIENT_CERT_PATH")
        if insecure and server_cert is not None:
            raise MlflowException(
                "When 'ignore_tls_verification' is true then 'server_cert_path' must not be set! "
                "This error may have occurred because the 'MLFLOW_TRACKING_INSECURE_TLS' and "
                "'MLFLOW_TRACKING_SERVER_CERT_PATH' environment variables are both set - only one "
                "of these environment variables may be set.",
                INVALID_PARAMETER_VALUE,
            )
        authorization = None
        if username and password:
            basic = base64.standard_b64encode(f"{username}:{password}".encode()).decode("utf-8")
            authorization = "Basic " + basic
        elif token:
            authorization = f"Bearer {token}"
        max_retries = _env_typed("MLFLOW_HTTP_REQUEST_MAX_RETRIES", int, 7)
        backoff_factor = _env_typed("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", int, 2)
        validate_max_retries(max_retries)
        validate_backoff_factor(backoff_factor)
        return cls(
            host=host.rstrip("/"),
            authorization=authorization,
            verify=server_cert if server_cert is not None else not insecure,
            client_cert=client_cert,
            timeout=float(_env_typed("MLFLOW_HTTP_REQUEST_TIMEOUT", int, 120)),
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            backoff_jitter=_env_typed("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", float, 1.0),
            respect_retry_after=_env_bool("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", True),
        )


def validate_max_retries(max_retries: int) -> None:
    """MLflow's _validate_max_retries, with its messages."""
    limit = _env_typed("_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT", int, 10)
    if limit < 0:
        raise MlflowException(
            f"The current maximum retry limit is invalid ({limit}). Cannot be negative.",
            INVALID_PARAMETER_VALUE,
        )
    if max_retries > limit:
        raise MlflowException(
            f"The configured max_retries value ({max_retries}) is in excess of the maximum "
            f"allowable retries ({limit})",
            INVALID_PARAMETER_VALUE,
        )
    if max_retries < 0:
        raise MlflowException(
            f"The max_retries value must be either 0 a positive integer. Got {max_retries}",
            INVALID_PARAMETER_VALUE,
        )


def validate_backoff_factor(backoff_factor: float) -> None:
    """MLflow's _validate_backoff_factor, with its messages."""
    limit = _env_typed("_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT", int, 120)
    if limit < 0:
        raise MlflowException(
            f"The current maximum backoff factor limit is invalid ({limit}). Cannot be negative.",
            INVALID_PARAMETER_VALUE,
        )
    if backoff_factor > limit:
        raise MlflowException(
            f"The configured backoff_factor value ({backoff_factor}) is in excess of the maximum "
            f"allowable backoff_factor limit ({limit})",
            INVALID_PARAMETER_VALUE,
        )
    if backoff_factor < 0:
        raise MlflowException(
            f"The backoff_factor value must be either 0 a positive integer. Got {backoff_factor}",
            INVALID_PARAMETER_VALUE,
        )
