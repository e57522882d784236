"""MLflow 3.18's dataset digests, byte for byte: an md5 over pandas' row hashes (or numpy's
element hashes), the row count or shape, and the column names, cut to 8 hex characters."""

from __future__ import annotations

import hashlib
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

MAX_ROWS = 10000


def compute_pandas_digest(df: Any) -> str:
    """The digest of a DataFrame: its first MAX_ROWS rows' string and numeric columns."""
    import numpy as np
    import pandas as pd

    trimmed_df = df.head(MAX_ROWS)
    string_columns = trimmed_df.columns[
        [
            all(type(x) is str for x in column.iloc[:1])
            and all(type(x) is str for x in column.to_numpy(dtype=object))
            for _, column in df.items()
        ]
    ]
    numeric_columns = trimmed_df.select_dtypes(include=[np.number]).columns
    desired_columns = string_columns.union(numeric_columns)
    trimmed_df = trimmed_df[desired_columns]
    return get_normalized_md5_digest(
        [pd.util.hash_pandas_object(trimmed_df).values, np.int64(len(df))]
        + [str(x).encode() for x in df.columns]
    )


def compute_numpy_digest(features: Any, targets: Any = None) -> str:
    """The digest of numpy features (and targets): arrays, or dicts of them by sorted key."""
    import numpy as np
    import pandas as pd

    hashable_elements: list[Any] = []

    def hash_array(array: Any) -> None:
        trimmed_array = array.flatten()[0:MAX_ROWS]
        try:
            hashable_elements.append(pd.util.hash_array(trimmed_array))
        except TypeError:
            hashable_elements.append(np.int64(trimmed_array.size))
        hashable_elements.extend(np.int64(x) for x in array.shape)

    for item in (features, targets):
        if item is None:
            continue
        if isinstance(item, dict):
            for key in sorted(item.keys()):
                hash_array(item[key])
        else:
            hash_array(item)
    return get_normalized_md5_digest(hashable_elements)


def get_normalized_md5_digest(elements: list[Any]) -> str:
    """The first 8 hex characters of the md5 of ``elements`` (buffers), in order."""
    if not elements:
        raise MlflowException(
            "No hashable elements were provided for md5 digest creation", INVALID_PARAMETER_VALUE
        )
    md5 = hashlib.md5(usedforsecurity=False)
    for element in elements:
        md5.update(element)
    return md5.hexdigest()[:8]
