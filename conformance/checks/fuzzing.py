"""Contract fuzzing of the provincial dossier API with schemathesis, seeded and bounded."""

from __future__ import annotations
