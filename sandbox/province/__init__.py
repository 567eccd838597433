"""The province side of the embedded sandbox (see app.py)."""
