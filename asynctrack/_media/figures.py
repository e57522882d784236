"""log_figure: matplotlib figures by savefig (format from the extension), plotly figures as HTML
or, through kaleido, as images."""

from __future__ import annotations

import os
import sys
from typing import Any

from .._extras import require
from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

MATPLOTLIB_EXTENSIONS = (
    ".avif", ".eps", ".gif", ".jpeg", ".jpg", ".pdf", ".pgf", ".png", ".ps", ".raw", ".rgba",
    ".svg", ".svgz", ".tif", ".tiff", ".webp",
)  # fmt: skip
PLOTLY_IMAGE_EXTENSIONS = (".png", ".jpeg", ".webp", ".svg", ".pdf")


class UnsupportedFigure(MlflowException, TypeError):
    """Not a figure asynctrack can save (MLflow raises a TypeError)."""


class UnsupportedExtension(MlflowException, ValueError):
    """An artifact file extension the figure's library cannot write (MLflow: ValueError)."""


def _is_matplotlib(fig: Any) -> bool:
    if "matplotlib" not in sys.modules:  # a figure cannot exist without the module loaded
        return False
    import matplotlib.figure

    return isinstance(fig, matplotlib.figure.Figure)


def _is_plotly(fig: Any) -> bool:
    if "plotly" not in sys.modules:
        return False
    import plotly.graph_objects

    return isinstance(fig, plotly.graph_objects.Figure)


def check(figure: Any, artifact_file: str) -> None:
    """Refuse, before anything is written, a figure or extension that cannot be saved."""
    ext = os.path.splitext(artifact_file)[1].lower()
    if _is_matplotlib(figure):
        allowed = MATPLOTLIB_EXTENSIONS
    elif _is_plotly(figure):
        allowed = (".html", *PLOTLY_IMAGE_EXTENSIONS)
    else:
        raise UnsupportedFigure(
            f"Unsupported figure object type: '{type(figure)}'", INVALID_PARAMETER_VALUE
        )
    if ext not in allowed:
        raise UnsupportedExtension(
            f"Unsupported file extension for {'a matplotlib' if allowed is MATPLOTLIB_EXTENSIONS else 'a plotly'} "
            f"figure: '{ext}' in '{artifact_file}'. Supported: {', '.join(allowed)}",
            INVALID_PARAMETER_VALUE,
        )


def save(figure: Any, artifact_file: str, path: str, save_kwargs: dict[str, Any] | None) -> None:
    """Write ``figure`` to ``path`` in the format ``artifact_file``'s extension names."""
    save_kwargs = dict(save_kwargs or {})
    ext = os.path.splitext(artifact_file)[1].lower()
    if _is_matplotlib(figure):
        save_kwargs.setdefault("format", ext[1:])
        figure.savefig(path, **save_kwargs)
    elif ext == ".html":
        save_kwargs.setdefault("include_plotlyjs", "cdn")
        save_kwargs.setdefault("auto_open", False)
        figure.write_html(path, **save_kwargs)
    else:
        # plotly renders images through kaleido (which drives a Chrome of its own)
        require("kaleido", "plotly-images", f"Logging a plotly figure as {ext[1:].upper()}")
        save_kwargs.setdefault("format", ext[1:])
        figure.write_image(path, **save_kwargs)
