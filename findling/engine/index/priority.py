"""Lowering the calling process's CPU and I/O priority, for an indexer that runs in the background.

The app's indexer is a child process (``findling.engine.index.service``); at its start it calls
``lower_process_priority`` before torch starts any thread, so every thread it starts later inherits the
priority. The operating system then serves the app's searches first on shared cores and still gives the
indexer every idle core. Each platform step is best effort: a sandbox that forbids one leaves that part at
the usual priority and says so in the returned report.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

_IOPRIO_CLASS_IDLE = 3
_IOPRIO_CLASS_SHIFT = 13
_IOPRIO_WHO_PROCESS = 1
_SYS_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "arm64": 30, "i686": 289, "i386": 289}
_IOPOL_TYPE_DISK, _IOPOL_SCOPE_PROCESS, _IOPOL_THROTTLE = 0, 0, 3
_WINDOWS_IDLE_PRIORITY_CLASS = 0x40
_WINDOWS_PROCESS_MODE_BACKGROUND_BEGIN = 0x00100000


@dataclass(frozen=True)
class PriorityReport:
    """What ``lower_process_priority`` managed: ``cpu`` and ``io`` are short words for the status line."""

    cpu: str
    io: str


def lower_process_priority(nice: int = 19) -> PriorityReport:
    """Run the calling process at CPU niceness ``nice`` (Unix; the idle class on Windows) and at the idle I/O
    class (Linux ``ioprio``, macOS disk throttling, Windows background mode). Never raises a priority; ``nice
    <= 0`` changes nothing."""
    if nice <= 0:
        return PriorityReport("normal", "normal")
    if sys.platform == "win32":
        return _windows()
    cpu = _unix_nice(nice)
    io = _linux_idle_io() if sys.platform.startswith("linux") else _macos_throttle_io() if sys.platform == "darwin" \
        else "normal"
    return PriorityReport(cpu, io)


def _unix_nice(nice: int) -> str:
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        return f"nice {max(current, nice)}"
    except (OSError, AttributeError) as exc:
        log.info("could not lower the indexer's CPU priority: %s", exc)
        return "normal"


def _linux_idle_io() -> str:
    number = _SYS_IOPRIO_SET.get(os.uname().machine)
    if number is None:
        return "normal"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(number, _IOPRIO_WHO_PROCESS, 0, _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT) != 0:
            log.info("could not set the idle I/O class: errno %d", ctypes.get_errno())
            return "normal"
        return "idle"
    except (OSError, AttributeError) as exc:
        log.info("could not set the idle I/O class: %s", exc)
        return "normal"


def _macos_throttle_io() -> str:
    try:
        libc = ctypes.CDLL("/usr/lib/libSystem.dylib", use_errno=True)
        if libc.setiopolicy_np(_IOPOL_TYPE_DISK, _IOPOL_SCOPE_PROCESS, _IOPOL_THROTTLE) != 0:
            return "normal"
        return "throttled"
    except (OSError, AttributeError) as exc:
        log.info("could not throttle the indexer's disk I/O: %s", exc)
        return "normal"


def _windows() -> PriorityReport:
    try:
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.GetCurrentProcess()
        cpu = "idle" if kernel32.SetPriorityClass(handle, _WINDOWS_IDLE_PRIORITY_CLASS) else "normal"
        io = "background" if kernel32.SetPriorityClass(handle, _WINDOWS_PROCESS_MODE_BACKGROUND_BEGIN) else "normal"
        return PriorityReport(cpu, io)
    except (OSError, AttributeError) as exc:
        log.info("could not lower the indexer's priority: %s", exc)
        return PriorityReport("normal", "normal")
