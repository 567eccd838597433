"""Dossiers forwarded by the national portal: received, acknowledged, processed and synced back."""

from __future__ import annotations
