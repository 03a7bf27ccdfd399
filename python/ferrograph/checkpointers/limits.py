"""Size limits on stored values: `max_value_bytes` refuses a channel value (or pending write)
whose encoding is larger, with a SerializationError naming the channel and where it was going,
before anything of the step is stored; `warn_value_bytes` logs a warning, once per channel, with
its size. Every saver checks each value it encodes with its `SizeLimits`."""

from __future__ import annotations

import logging
import threading
from typing import Optional

from ferrograph.errors import SerializationError

__all__ = ["SizeLimits"]

logger = logging.getLogger("ferrograph.checkpointers")


class SizeLimits:
    def __init__(self, max_value_bytes: Optional[int] = None, warn_value_bytes: Optional[int] = None) -> None:
        for name, value in (("max_value_bytes", max_value_bytes), ("warn_value_bytes", warn_value_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if max_value_bytes is not None and warn_value_bytes is not None and warn_value_bytes > max_value_bytes:
            raise ValueError(f"warn_value_bytes ({warn_value_bytes}) is above max_value_bytes ({max_value_bytes})")
        self.max_value_bytes = max_value_bytes
        self.warn_value_bytes = warn_value_bytes
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def check(self, channel: str, size: int, thread_id: str, checkpoint_ns: str, what: str = "value") -> None:
        """Refuses (SerializationError) or warns about an encoded `what` ("value" or "pending
        write") of `size` bytes for `channel` of thread `thread_id`."""
        where = f"thread {thread_id!r}" + (f", namespace {checkpoint_ns!r}" if checkpoint_ns else "")
        if self.max_value_bytes is not None and size > self.max_value_bytes:
            raise SerializationError(
                f"the {what} of channel {channel!r} ({where}) is {size} bytes encoded, over max_value_bytes="
                f"{self.max_value_bytes}: nothing of this step was stored"
            )
        if self.warn_value_bytes is not None and size > self.warn_value_bytes:
            with self._lock:
                if channel in self._warned:
                    return
                self._warned.add(channel)
            logger.warning(
                "the %s of channel %r (%s) is %d bytes encoded, over warn_value_bytes=%d (warned once per channel)",
                what, channel, where, size, self.warn_value_bytes,
            )

    def __bool__(self) -> bool:
        return self.max_value_bytes is not None or self.warn_value_bytes is not None
