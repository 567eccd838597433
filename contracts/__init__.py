"""The national API contracts as data: OpenAPI 3.1 documents and JSON Schemas (see README.md here)."""
