"""Run a function over items on a background thread, ahead of the caller, results in order.

The indexer reads (hashes, extracts, chunks) the next files here while its own thread encodes and writes the
current batch: extraction is Python that keeps one core busy, encoding is torch that mostly runs outside the
GIL, so the two overlap instead of taking turns. What waits for the caller is bounded twice: by count
(``ahead`` results) and by ``cost`` (the indexer counts a file's tokens, so a few large files hold as little
memory as many small ones), and the thread stops when the caller stops iterating (a cancelled run, an
exception, or the end).

>>> list(read_ahead(range(5), lambda x: x * x, ahead=2))
[0, 1, 4, 9, 16]
>>> list(read_ahead(range(3), lambda x: x + 1, ahead=0))  # ahead=0: in line, no thread
[1, 2, 3]
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar


T = TypeVar("T")
R = TypeVar("R")


class _Failed:
    """An exception the worker met on one item; raised again in the caller at that item's place."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Waiting:
    """The finished results not yet taken, with their summed cost, shared by the worker and the caller."""

    def __init__(self, ahead: int, budget: float) -> None:
        self.ahead, self.budget = ahead, budget
        self.items: deque = deque()
        self.cost = 0.0
        self.done = False
        self.stopped = False
        self.cond = threading.Condition()

    def put(self, value, cost: float) -> bool:
        """Wait for room (always room for one), then add; False once the caller has stopped."""
        with self.cond:
            while self.items and not self.stopped and (len(self.items) >= self.ahead
                                                        or self.cost + cost > self.budget):
                self.cond.wait()
            if self.stopped:
                return False
            self.items.append((value, cost))
            self.cost += cost
            self.cond.notify_all()
            return True

    def finish(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def take(self):
        """The next value; ``_Waiting`` itself once the worker is done and nothing is left."""
        with self.cond:
            while not self.items and not self.done:
                self.cond.wait()
            if not self.items:
                return self
            value, cost = self.items.popleft()
            self.cost -= cost
            self.cond.notify_all()
            return value

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def read_ahead(items: Iterable[T], fn: Callable[[T], R], *, ahead: int, budget: float = float("inf"),
               cost: Callable[[R], float] | None = None,
               before_each: Callable[[], None] | None = None) -> Iterator[R]:
    """``fn(item)`` for each item, in order, computed on one worker thread ahead of the caller.

    At most ``ahead`` results wait, and their summed ``cost(result)`` stays within ``budget`` (one result
    always fits). ``before_each`` runs on the worker before each item (a pause check: a paused job then stops
    reading too). An exception from ``fn`` is raised in the caller when it reaches that item. ``ahead <= 0``
    runs everything in line, on the caller's thread.
    """
    if ahead <= 0:
        for item in items:
            if before_each is not None:
                before_each()
            yield fn(item)
        return
    waiting = _Waiting(ahead, budget)

    def work() -> None:
        try:
            for item in items:
                if waiting.stopped:
                    return
                if before_each is not None:
                    before_each()
                try:
                    value = fn(item)
                    weight = cost(value) if cost is not None else 0.0
                except Exception as exc:  # handed to the caller, in order
                    value, weight = _Failed(exc), 0.0
                if not waiting.put(value, weight):
                    return
        except Exception as exc:  # the item iterable itself failed
            waiting.put(_Failed(exc), 0.0)
        finally:
            waiting.finish()

    worker = threading.Thread(target=work, name="findling-read-ahead", daemon=True)
    worker.start()
    try:
        while (value := waiting.take()) is not waiting:
            if isinstance(value, _Failed):
                raise value.exc
            yield value
    finally:
        waiting.stop()
        worker.join(timeout=1.0)  # a file being read finishes on its own; nothing it makes is used
