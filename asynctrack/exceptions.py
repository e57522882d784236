"""MLflow's exception type and error codes, without protobuf.

`MlflowException` behaves like `mlflow.exceptions.MlflowException` in 3.18: the error code is kept
as its *name* (``"INVALID_PARAMETER_VALUE"``), ``str(e)`` is the message, and the JSON form carries
the same ``sqlstate``/``error_class`` MLflow derives, so callers that compare errors across the two
libraries see identical values.
"""

from __future__ import annotations

import json
from typing import Any

# Numeric values of `mlflow.protos.databricks_pb2.ErrorCode` (databricks.proto), all of them, so an
# int code MLflow knows maps to the same name here.
ERROR_CODE_NAME_TO_NUMBER: dict[str, int] = {
    "INTERNAL_ERROR": 1,
    "TEMPORARILY_UNAVAILABLE": 2,
    "IO_ERROR": 3,
    "BAD_REQUEST": 4,
    "SERVICE_UNDER_MAINTENANCE": 5,
    "WORKSPACE_TEMPORARILY_UNAVAILABLE": 6,
    "DEADLINE_EXCEEDED": 7,
    "CANCELLED": 8,
    "RESOURCE_EXHAUSTED": 9,
    "ABORTED": 10,
    "NOT_FOUND": 11,
    "ALREADY_EXISTS": 12,
    "UNAUTHENTICATED": 13,
    "INVALID_PARAMETER_VALUE": 1000,
    "ENDPOINT_NOT_FOUND": 1001,
    "MALFORMED_REQUEST": 1002,
    "INVALID_STATE": 1003,
    "PERMISSION_DENIED": 1004,
    "FEATURE_DISABLED": 1005,
    "CUSTOMER_UNAUTHORIZED": 1006,
    "REQUEST_LIMIT_EXCEEDED": 1007,
    "RESOURCE_CONFLICT": 1008,
    "UNPARSEABLE_HTTP_ERROR": 1009,
    "NOT_IMPLEMENTED": 1010,
    "DATA_LOSS": 1011,
    "INVALID_STATE_TRANSITION": 2001,
    "COULD_NOT_ACQUIRE_LOCK": 2002,
    "RESOURCE_ALREADY_EXISTS": 3001,
    "RESOURCE_DOES_NOT_EXIST": 3002,
    "QUOTA_EXCEEDED": 4001,
    "MAX_BLOCK_SIZE_EXCEEDED": 4002,
    "MAX_READ_SIZE_EXCEEDED": 4003,
    "PARTIAL_DELETE": 4004,
    "MAX_LIST_SIZE_EXCEEDED": 4005,
    "DRY_RUN_FAILED": 5001,
    "RESOURCE_LIMIT_EXCEEDED": 5002,
    "DIRECTORY_NOT_EMPTY": 6001,
    "DIRECTORY_PROTECTED": 6002,
    "MAX_NOTEBOOK_SIZE_EXCEEDED": 6003,
    "MAX_CHILD_NODE_SIZE_EXCEEDED": 6004,
    "SEARCH_QUERY_TOO_LONG": 6100,
    "SEARCH_QUERY_TOO_SHORT": 6101,
    "MANAGED_RESOURCE_GROUP_DOES_NOT_EXIST": 7001,
    "PERMISSION_NOT_PROPAGATED": 7002,
    "DEPLOYMENT_TIMEOUT": 7003,
    "GIT_CONFLICT": 8001,
    "GIT_UNKNOWN_REF": 8002,
    "GIT_SENSITIVE_TOKEN_DETECTED": 8003,
    "GIT_URL_NOT_ON_ALLOW_LIST": 8004,
    "GIT_REMOTE_ERROR": 8005,
    "PROJECTS_OPERATION_TIMEOUT": 8006,
    "IPYNB_FILE_IN_REPO": 8007,
    "INSECURE_PARTNER_RESPONSE": 8100,
    "MALFORMED_PARTNER_RESPONSE": 8101,
    "METASTORE_DOES_NOT_EXIST": 9000,
    "DAC_DOES_NOT_EXIST": 9001,
    "CATALOG_DOES_NOT_EXIST": 9002,
    "SCHEMA_DOES_NOT_EXIST": 9003,
    "TABLE_DOES_NOT_EXIST": 9004,
    "SHARE_DOES_NOT_EXIST": 9005,
    "RECIPIENT_DOES_NOT_EXIST": 9006,
    "STORAGE_CREDENTIAL_DOES_NOT_EXIST": 9007,
    "EXTERNAL_LOCATION_DOES_NOT_EXIST": 9008,
    "PRINCIPAL_DOES_NOT_EXIST": 9009,
    "PROVIDER_DOES_NOT_EXIST": 9010,
    "METASTORE_ALREADY_EXISTS": 9020,
    "DAC_ALREADY_EXISTS": 9021,
    "CATALOG_ALREADY_EXISTS": 9022,
    "SCHEMA_ALREADY_EXISTS": 9023,
    "TABLE_ALREADY_EXISTS": 9024,
    "SHARE_ALREADY_EXISTS": 9025,
    "RECIPIENT_ALREADY_EXISTS": 9026,
    "STORAGE_CREDENTIAL_ALREADY_EXISTS": 9027,
    "EXTERNAL_LOCATION_ALREADY_EXISTS": 9028,
    "PROVIDER_ALREADY_EXISTS": 9029,
    "CATALOG_NOT_EMPTY": 9040,
    "SCHEMA_NOT_EMPTY": 9041,
    "METASTORE_NOT_EMPTY": 9042,
    "PROVIDER_SHARE_NOT_ACCESSIBLE": 9060,
}
ERROR_CODE_NUMBER_TO_NAME: dict[int, str] = {v: k for k, v in ERROR_CODE_NAME_TO_NUMBER.items()}

# The codes tracking code raises or maps, as module constants (same names as databricks_pb2).
INTERNAL_ERROR = 1
TEMPORARILY_UNAVAILABLE = 2
IO_ERROR = 3
BAD_REQUEST = 4
DEADLINE_EXCEEDED = 7
CANCELLED = 8
RESOURCE_EXHAUSTED = 9
ABORTED = 10
NOT_FOUND = 11
ALREADY_EXISTS = 12
UNAUTHENTICATED = 13
INVALID_PARAMETER_VALUE = 1000
ENDPOINT_NOT_FOUND = 1001
MALFORMED_REQUEST = 1002
INVALID_STATE = 1003
PERMISSION_DENIED = 1004
FEATURE_DISABLED = 1005
CUSTOMER_UNAUTHORIZED = 1006
REQUEST_LIMIT_EXCEEDED = 1007
RESOURCE_CONFLICT = 1008
NOT_IMPLEMENTED = 1010
DATA_LOSS = 1011
RESOURCE_ALREADY_EXISTS = 3001
RESOURCE_DOES_NOT_EXIST = 3002

ERROR_CODE_TO_HTTP_STATUS: dict[str, int] = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "CANCELLED": 499,
    "RESOURCE_EXHAUSTED": 429,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "CUSTOMER_UNAUTHORIZED": 401,
    "UNAUTHENTICATED": 401,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}
HTTP_STATUS_TO_ERROR_CODE: dict[int, str] = {v: k for k, v in ERROR_CODE_TO_HTTP_STATUS.items()}
HTTP_STATUS_TO_ERROR_CODE[400] = "BAD_REQUEST"
HTTP_STATUS_TO_ERROR_CODE[404] = "ENDPOINT_NOT_FOUND"
HTTP_STATUS_TO_ERROR_CODE[500] = "INTERNAL_ERROR"

# mlflow.error_classification: client-side error_code -> (error_class, sqlstate).
_CLIENT_CLASSIFICATION: dict[str, tuple[str, str]] = {
    "BAD_REQUEST": ("INVALID_PARAMETER_VALUE", "KAM00"),
    "CUSTOMER_UNAUTHORIZED": ("PERMISSION_DENIED", "KAM00"),
    "ENDPOINT_NOT_FOUND": ("RESOURCE_NOT_FOUND", "KAM00"),
    "FEATURE_DISABLED": ("FEATURE_DISABLED", "KAM00"),
    "INTERNAL_ERROR": ("CLIENT_INTERNAL_ERROR", "XXM00"),
    "INVALID_PARAMETER_VALUE": ("INVALID_PARAMETER_VALUE", "KAM00"),
    "INVALID_STATE": ("CLIENT_INTERNAL_ERROR", "XXM00"),
    "NOT_FOUND": ("RESOURCE_NOT_FOUND", "KAM00"),
    "PERMISSION_DENIED": ("PERMISSION_DENIED", "KAM00"),
    "RESOURCE_ALREADY_EXISTS": ("RESOURCE_ALREADY_EXISTS", "KAM00"),
    "RESOURCE_DOES_NOT_EXIST": ("RESOURCE_NOT_FOUND", "KAM00"),
    "TEMPORARILY_UNAVAILABLE": ("CLIENT_INTERNAL_ERROR", "XXM00"),
}
# Error classes whose sqlstate is more specific than the one their error code implies.
_ERROR_CLASS_TO_SQLSTATE: dict[str, str] = {
    "ATTRIBUTE_NOT_FOUND": "KAM04",
    "MODEL_SERIALIZATION_FAILED": "KAM03",
    "PREDICTION_FUNCTION_FAILED": "KAM02",
    "SCHEMA_ENFORCEMENT_FAILED": "KAM01",
}


def error_code_name(error_code: int | str) -> str:
    """The ErrorCode name for an int code or a name; unknown or mistyped codes are INTERNAL_ERROR.

    MLflow resolves codes with `ErrorCode.Name`, which rejects floats and unknown numbers; both
    fall back to INTERNAL_ERROR there, and here.
    """
    if isinstance(error_code, str):
        return error_code if error_code in ERROR_CODE_NAME_TO_NUMBER else "INTERNAL_ERROR"
    if isinstance(error_code, int):  # bool is an int, as protobuf sees it
        return ERROR_CODE_NUMBER_TO_NAME.get(int(error_code), "INTERNAL_ERROR")
    return "INTERNAL_ERROR"


def error_code_number(error_code: int | str) -> int:
    """The numeric ErrorCode for an int code or a name (INTERNAL_ERROR when unknown)."""
    return ERROR_CODE_NAME_TO_NUMBER[error_code_name(error_code)]


def get_error_code(http_status: int) -> int:
    """The numeric ErrorCode MLflow's REST client assigns to an HTTP status."""
    return ERROR_CODE_NAME_TO_NUMBER[HTTP_STATUS_TO_ERROR_CODE.get(http_status, "INTERNAL_ERROR")]


class MlflowException(Exception):
    """An error to surface to the caller, with MLflow's error code, message and JSON form."""

    def __init__(
        self,
        message: Any,
        error_code: int | str = INTERNAL_ERROR,
        sqlstate: str | None = None,
        error_class: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.error_code: str = error_code_name(error_code)
        message = str(message)
        self.message: str = message
        classification = _CLIENT_CLASSIFICATION.get(self.error_code)
        if error_class is None and classification is not None:
            error_class = classification[0]
        self.error_class: str | None = error_class
        if sqlstate is None:
            sqlstate = _ERROR_CLASS_TO_SQLSTATE.get(error_class) if error_class else None
            if sqlstate is None and classification is not None:
                sqlstate = classification[1]
        self.sqlstate: str | None = sqlstate
        self.json_kwargs: dict[str, Any] = kwargs
        super().__init__(message)

    def serialize_as_json(self) -> str:
        """The REST error body MLflow's server sends for this exception."""
        exception_dict: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.sqlstate is not None:
            exception_dict["sqlstate"] = self.sqlstate
        if self.error_class is not None:
            exception_dict["error_class"] = self.error_class
        exception_dict.update(self.json_kwargs)
        return json.dumps(exception_dict)

    def get_http_status_code(self) -> int:
        """The HTTP status MLflow's server answers with for this error code."""
        return ERROR_CODE_TO_HTTP_STATUS.get(self.error_code, 500)

    @classmethod
    def invalid_parameter_value(
        cls,
        message: Any,
        sqlstate: str | None = None,
        error_class: str | None = None,
        **kwargs: Any,
    ) -> MlflowException:
        """An exception with the INVALID_PARAMETER_VALUE code, the commonest validation error."""
        return cls(
            message,
            error_code=INVALID_PARAMETER_VALUE,
            sqlstate=sqlstate,
            error_class=error_class,
            **kwargs,
        )


__all__ = [
    "ABORTED",
    "ALREADY_EXISTS",
    "BAD_REQUEST",
    "CANCELLED",
    "CUSTOMER_UNAUTHORIZED",
    "DATA_LOSS",
    "DEADLINE_EXCEEDED",
    "ENDPOINT_NOT_FOUND",
    "ERROR_CODE_NAME_TO_NUMBER",
    "ERROR_CODE_NUMBER_TO_NAME",
    "ERROR_CODE_TO_HTTP_STATUS",
    "FEATURE_DISABLED",
    "HTTP_STATUS_TO_ERROR_CODE",
    "INTERNAL_ERROR",
    "INVALID_PARAMETER_VALUE",
    "INVALID_STATE",
    "IO_ERROR",
    "MALFORMED_REQUEST",
    "MlflowException",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "PERMISSION_DENIED",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_CONFLICT",
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_EXHAUSTED",
    "TEMPORARILY_UNAVAILABLE",
    "UNAUTHENTICATED",
    "error_code_name",
    "error_code_number",
    "get_error_code",
]
