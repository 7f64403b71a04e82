import doctest
import threading
import time

import pytest

import findling.engine.index.read_ahead
from findling.engine.index.read_ahead import read_ahead


def test_doctests():
    assert doctest.testmod(findling.engine.index.read_ahead).failed == 0


def test_results_come_in_order_from_another_thread():
    threads = []

    def square(x):
        threads.append(threading.get_ident())
        time.sleep(0.001 * (x % 3))  # uneven work must not reorder
        return x * x

    assert list(read_ahead(range(50), square, ahead=4)) == [x * x for x in range(50)]
    assert set(threads) and threading.get_ident() not in threads


def test_reads_ahead_of_the_caller_within_count_and_budget():
    started = []
    gen = read_ahead(range(100), lambda x: started.append(x) or x, ahead=5)
    assert next(gen) == 0
    deadline = time.monotonic() + 5
    while len(started) < 7 and time.monotonic() < deadline:  # 5 waiting + 1 taken + 1 in hand
        time.sleep(0.01)
    time.sleep(0.05)
    assert 6 <= len(started) <= 7
    gen.close()

    started.clear()
    gen = read_ahead(range(100), lambda x: started.append(x) or x, ahead=50, budget=10, cost=lambda v: 4)
    assert next(gen) == 0
    time.sleep(0.1)
    assert len(started) <= 1 + 2 + 1  # taken, two of cost 4 within 10, one in hand
    assert list(gen) == list(range(1, 100))


def test_an_exception_surfaces_at_its_item_and_the_earlier_results_arrive():
    def fn(x):
        if x == 3:
            raise ValueError("bad item 3")
        return x

    got = []
    with pytest.raises(ValueError, match="bad item 3"):
        for value in read_ahead(range(10), fn, ahead=4):
            got.append(value)
    assert got == [0, 1, 2]


def test_stopping_early_stops_the_worker():
    seen = []
    gen = read_ahead(range(10_000), lambda x: seen.append(x) or x, ahead=2)
    assert next(gen) == 0
    gen.close()
    count = len(seen)
    time.sleep(0.1)
    assert len(seen) == count <= 4
    assert not any(t.name == "findling-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_before_each_runs_on_the_worker_before_every_item():
    gate = threading.Event()
    calls = []

    def before():
        calls.append(threading.get_ident())
        gate.wait()

    gen = read_ahead(range(3), lambda x: x, ahead=2, before_each=before)
    first = []
    taker = threading.Thread(target=lambda: first.append(next(gen)))
    taker.start()
    time.sleep(0.1)
    assert first == []  # held before its first item
    gate.set()
    taker.join(5)
    assert first == [0] and list(gen) == [1, 2] and len(calls) == 3
