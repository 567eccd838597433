"""Eight-byte cells in a memory-mapped file: state every counterpart worker reads on every request.

Several worker processes serve the counterpart on one port (``--national-workers``). What they must all see at
once and read on every request — the outage switches, the generation counters that tell a worker its cached sync
sessions or published signing keys are stale — lives here rather than in the store: a read is an
``unpack_from`` on shared memory (no system call, no SQLite), a write is one aligned eight-byte store, which the
other workers see immediately. The file is per run (:attr:`NationalConfig.instance`), so a restart on a reused
state folder starts with every service up.

Example::

    cells = SharedCells(state_dir / "shared-<run>.cells")
    cells.set_float(0, 12.5); cells.get_float(0)
    cells.bump(3)            # a generation counter
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

__all__ = ["CELLS", "OUTAGE_CELLS", "SIGNING_KEYS_CELL", "SYNC_SESSIONS_CELL", "SharedCells"]

#: cells in the file (each 8 bytes). A new part that needs one takes the next free number here.
CELLS = 16
#: cells 0-2: the outage deadlines of sync, payment, idp (:mod:`.outage`)
OUTAGE_CELLS = (0, 1, 2)
#: generation of the sync sessions: bumped when the control API expires them all (workers drop their cache)
SYNC_SESSIONS_CELL = 3
#: generation of the published signing keys: bumped after a rotated key is committed (workers reread the JWKS)
SIGNING_KEYS_CELL = 4
_SIZE = 8 * CELLS
_DOUBLE = struct.Struct("<d")
_UINT = struct.Struct("<Q")


class SharedCells:
    """A file of :data:`CELLS` eight-byte cells, mapped shared (``path=None``: anonymous, this process only)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            self._map = mmap.mmap(-1, _SIZE)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)  # zero-filled; a concurrent worker's ftruncate to the same size is harmless
            self._map = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)

    def get_float(self, cell: int) -> float:
        value: float = _DOUBLE.unpack_from(self._map, 8 * cell)[0]
        return value

    def set_float(self, cell: int, value: float) -> None:
        _DOUBLE.pack_into(self._map, 8 * cell, value)

    def get_int(self, cell: int) -> int:
        value: int = _UINT.unpack_from(self._map, 8 * cell)[0]
        return value

    def bump(self, cell: int) -> int:
        """Increment a generation counter (callers bump it after the change it announces is committed). Two
        workers bumping at once may leave it one higher instead of two: readers only compare it with what they
        saw, so any change is enough."""
        value = (self.get_int(cell) + 1) % (1 << 64)
        _UINT.pack_into(self._map, 8 * cell, value)
        return value

    def close(self) -> None:
        self._map.close()
