"""Path and query parameter types shared by the routes.

Ids are 32-bit INTEGER columns on PostgreSQL (and 64-bit on SQLite): a larger number in
a URL is simply not there, so it is refused as invalid input (422) before any query,
instead of making the database raise (a 500).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

__all__ = ["MAX_ID", "RowId"]

MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
