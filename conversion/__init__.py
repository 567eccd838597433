"""Verification of legacy-data conversion after the 1 July 2025 rearrangement (``haicap convert check``)."""
