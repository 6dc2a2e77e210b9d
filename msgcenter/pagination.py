"""List pagination of the API: `{"results": [...], "next": <url|null>, "previous": ...}`.

Cursor based, so pages stay fast and stable on big tables (no COUNT, no OFFSET)."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from msgcenter.errors import InvalidRequest


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    ordering = "-id"

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        # Views name a unique, unchanging column in `cursor_ordering`.
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidRequest("Invalid cursor.", details={"field": self.cursor_query_param})
