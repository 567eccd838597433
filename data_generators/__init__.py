"""Deterministic synthetic data: administrative units, citizens, enterprises, dossiers, legacy data."""
