"""One day's raw records of one category, in memory up to a limit, then in a temporary file."""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator


class DayRecords:
    """One day's raw records of one category, in server order: in memory up to a limit, then on disk.

    Pages are pickled into a ``SpooledTemporaryFile``; past ``memory_limit_bytes`` it moves to a
    temporary file, which is deleted once the records have been read back (or on error).
    """

    def __init__(self, memory_limit_bytes: int) -> None:
        self._limit = max(memory_limit_bytes, 1)
        self._file = tempfile.SpooledTemporaryFile(max_size=self._limit)  # noqa: SIM115 (closed in __iter__)
        self.count = 0

    def extend(self, records: list[dict]) -> None:
        """Append a page's records."""
        if records:
            pickle.dump(records, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += len(records)

    @property
    def on_disk(self) -> bool:
        """Whether the day outgrew memory and moved to a temporary file (it rolls over past the limit)."""
        return self._file.tell() > self._limit

    def __iter__(self) -> Iterator[dict]:
        """Every record once, in order; the buffer is released afterwards."""
        try:
            self._file.seek(0)
            while True:
                try:
                    page = pickle.load(self._file)  # noqa: S301 (our own temporary file)
                except EOFError:
                    return
                yield from page
        finally:
            self.close()

    def close(self) -> None:
        """Release the memory or delete the temporary file (safe to call twice)."""
        self._file.close()
