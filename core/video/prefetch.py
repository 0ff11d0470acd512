"""Frames decoded on a worker thread while the caller analyses the ones before.

FFmpeg decodes and converts to RGB without holding the GIL, so a thread
that decodes a frame or two ahead overlaps decoding with inference instead
of adding to it (MediaPipe's graph does the same with its own threads).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

PREFETCH_FRAMES = 2
"""Frames decoded ahead of the one being analysed: enough to hide one frame's decode, little memory."""

_POLL_S = 0.1  # how often a blocked worker looks whether the caller has gone


def prefetched(items: Iterator[T], depth: int = PREFETCH_FRAMES) -> Iterator[T]:
    """``items`` in order, produced on a worker thread up to ``depth`` ahead of the caller.

    An error raised by ``items`` is raised here, after the items before it.
    Closing this iterator (or leaving a loop over it) stops the worker and
    closes ``items`` on the worker's thread, before returning: the caller
    may then close what ``items`` reads from.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # handed to the caller, who raises it
            put((None, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="rigcast-decode", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
        worker.join()
