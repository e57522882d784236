"""PagedList: a list of search results and the token of the next page, as MLflow's."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class PagedList(list[T]):
    """A list with ``token``: pass it as ``page_token`` to get the next page (None: last page)."""

    def __init__(self, items: list[T], token: str | None, total_count: int | None = None) -> None:
        super().__init__(items)
        self.token = token
        self.total_count = total_count

    def to_list(self) -> list[T]:
        return list(self)
