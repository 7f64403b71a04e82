"""Optical character recognition for images and for PDF pages without a text layer.

Engines, in order of preference: RapidOCR on onnxruntime (``rapidocr-onnxruntime``; its models ship inside
the wheel, nothing is downloaded), else the ``tesseract`` program when it is on PATH. ``status`` says which
one is used, or why OCR is off; it never raises. ``recognize`` turns one PIL image into text within a time
limit. PDF pages are rendered with pypdfium2.

OCR'd text is always marked by its caller: a page label ending in ``OCR_SUFFIX`` so the preview can say the
text was recognised, not read.
"""
from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OCR_SUFFIX = " (OCR)"
"""Appended to the label of every page whose text came from OCR."""

PAGE_TIME_LIMIT_S = 30.0
"""Longest one page or image may take to recognise; a slower page is skipped with a warning."""

MAX_OCR_PAGES = 50
"""Most pages of one PDF that are OCR'd; later text-less pages are left out with a warning."""

MAX_IMAGE_PIXELS = 40_000_000
"""Images larger than this (width x height) are scaled down before OCR, and never decoded beyond it."""

RENDER_SCALE = 2.0
"""PDF points to pixels when a page is rendered for OCR (144 dpi)."""


@dataclass(frozen=True)
class OcrStatus:
    """Whether OCR can run here: ``engine`` names it (``"rapidocr"``, ``"tesseract"`` or ``""``);
    ``reason`` says why it is off (empty when available)."""

    available: bool
    engine: str
    reason: str


class OcrTimeout(Exception):
    """One page took longer than its time limit."""


@functools.lru_cache(maxsize=1)
def status() -> OcrStatus:
    """Which OCR engine this machine has, or why there is none. Cheap after the first call; never raises."""
    reasons = []
    try:
        import rapidocr_onnxruntime  # noqa: F401
        import PIL  # noqa: F401
        import pypdfium2  # noqa: F401
        return OcrStatus(True, "rapidocr", "")
    except Exception as exc:  # missing or broken install: OCR off, not a crash
        reasons.append(f"rapidocr-onnxruntime is not usable ({type(exc).__name__}: {exc})")
    if shutil.which("tesseract"):
        try:
            import PIL  # noqa: F401
            import pypdfium2  # noqa: F401
            return OcrStatus(True, "tesseract", "")
        except Exception as exc:
            reasons.append(f"Pillow/pypdfium2 not usable ({type(exc).__name__})")
    else:
        reasons.append("tesseract is not on PATH")
    return OcrStatus(False, "", "; ".join(reasons))


_engine_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _rapid() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def _fit(image: Any) -> Any:
    """``image`` as RGB, scaled down to at most ``MAX_IMAGE_PIXELS``."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        factor = (MAX_IMAGE_PIXELS / (width * height)) ** 0.5
        image = image.resize((max(1, int(width * factor)), max(1, int(height * factor))))
    return image.convert("RGB")


def _lines_in_order(boxes: list) -> str:
    """RapidOCR's boxes as lines in reading order: top to bottom, then left to right within a line."""
    items = []
    for box, text, _score in boxes:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append((min(ys), max(ys), min(xs), text))
    items.sort()
    lines: list[list[tuple[float, str]]] = []
    bottom = None
    for top, low, left, text in items:
        if bottom is not None and top < bottom - (low - top) / 2:
            lines[-1].append((left, text))
            bottom = max(bottom, low)
        else:
            lines.append([(left, text)])
            bottom = low
    return "\n".join(" ".join(t for _, t in sorted(line)) for line in lines)


def recognize(image: Any, *, time_limit_s: float = PAGE_TIME_LIMIT_S) -> str:
    """The text in the PIL ``image``. Raises ``OcrTimeout`` past ``time_limit_s`` and ``RuntimeError``
    when no engine is available."""
    found = status()
    if not found.available:
        raise RuntimeError(f"OCR is not available: {found.reason}")
    image = _fit(image)
    if found.engine == "tesseract":
        return _tesseract(image, time_limit_s)
    import numpy as np

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with _engine_lock:  # one onnxruntime session, not thread-safe to share mid-call
                boxes, _ = _rapid()(np.asarray(image))
            result["text"] = _lines_in_order(boxes or [])
        except Exception as exc:  # reported to the caller below
            result["error"] = exc

    worker = threading.Thread(target=run, name="findling-ocr", daemon=True)
    worker.start()
    worker.join(time_limit_s)
    if worker.is_alive():
        raise OcrTimeout(f"OCR took longer than {time_limit_s:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["text"]


def _tesseract(image: Any, time_limit_s: float) -> str:
    with tempfile.TemporaryDirectory(prefix="findling-ocr-") as tmp:
        source = Path(tmp) / "page.png"
        image.save(source)
        try:
            done = subprocess.run(
                ["tesseract", str(source), "stdout"], capture_output=True, timeout=time_limit_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrTimeout(f"OCR took longer than {time_limit_s:.0f} s") from exc
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode("utf-8", "replace").strip()[:200] or "tesseract failed")
    return done.stdout.decode("utf-8", "replace")


def render_pdf_page(data: bytes, index: int) -> Any:
    """Page ``index`` (0-based) of the PDF ``data`` as a PIL image at ``RENDER_SCALE``."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        page = document[index]
        width, height = page.get_size()
        scale = RENDER_SCALE
        if width * height * scale * scale > MAX_IMAGE_PIXELS:
            scale = (MAX_IMAGE_PIXELS / (width * height)) ** 0.5
        return page.render(scale=scale).to_pil()
    finally:
        document.close()
