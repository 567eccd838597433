"""Synchronisation of dossier records to the national portal (DongBoHoSoMC / CapNhatTienDoHoSoMC / TraCuuHoSo)."""

from __future__ import annotations
