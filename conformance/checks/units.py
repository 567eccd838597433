"""Administrative units and agency identification codes declared by the province (Decision 19/2025/QĐ-TTg)."""

from __future__ import annotations
