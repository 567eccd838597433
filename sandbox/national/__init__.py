"""The national side of the embedded sandbox (see app.py)."""
