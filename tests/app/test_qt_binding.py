"""The Qt binding itself: calls the app makes thousands of times must not leak or drop Python references.

PySide6 6.12.0 returned None from every void method without taking a reference to it, so each call of
``QLabel.setText``, ``QTimer.start`` or ``QCoreApplication.processEvents`` lowered None's reference count by
one. On Python 3.11 None is an ordinary object: after a few minutes of indexing (progress labels updated,
timers restarted) the app aborted with "Fatal Python error: none_dealloc". pyproject.toml keeps that release
out; this test fails on any binding with the same fault.
"""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
from PySide6.QtWidgets import QLabel

CALLS = 2000


@pytest.mark.parametrize("name", ["QLabel.setText", "QTimer.start", "processEvents", "QTimer.stop"])
def test_void_calls_keep_none_alive(qapp, name):
    label, timer = QLabel(), QTimer()
    call = {
        "QLabel.setText": lambda: label.setText("indexing 3/7"),
        "QTimer.start": lambda: timer.start(1000),
        "processEvents": lambda: QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 1),
        "QTimer.stop": timer.stop,
    }[name]
    call()  # first call: caches, lazy imports
    before = sys.getrefcount(None)
    for _ in range(CALLS):
        call()
    lost = before - sys.getrefcount(None)
    assert lost < CALLS // 10, f"{name}: None lost {lost} references over {CALLS} calls"
