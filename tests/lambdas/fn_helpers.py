"""Names shared by the handler tests and their fixtures (a module, so imports never hit another conftest)."""

from __future__ import annotations

SOURCE_BUCKET = "source-bucket"
