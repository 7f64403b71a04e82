"""Optical character recognition for images and for PDF pages without a text layer.

Engines, in order of preference: RapidOCR on onnxruntime (``rapidocr-onnxruntime``; its models ship inside
the wheel, nothing is downloaded), else the ``tesseract`` program when it is on PATH. ``status`` says which
one is used, or why OCR is off; it never raises. ``enabled`` adds the user's switch (``Config.ocr``) to it.
``recognize`` turns one PIL image into text within a time limit. PDF pages are rendered with pypdfium2
(``PdfPages``), never beyond ``MAX_IMAGE_PIXELS``.

OCR'd text is always marked by its caller: the page's ``PageSpan.ocr`` is set and its label ends in
``OCR_SUFFIX``, so a reader of the text can say it was recognised, not read.
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from findling.engine.config import Config

logger = logging.getLogger(__name__)

OCR_SUFFIX = " (OCR)"
"""Appended to the label of every page whose text came from OCR."""


def mark(label: str) -> str:
    """``label`` (a section title, or empty) as the label of a page whose text came from OCR."""
    return (label + OCR_SUFFIX).strip()

PAGE_TIME_LIMIT_S = 30.0
"""Longest one page or image may take to recognise; a slower page is skipped with a warning."""

MAX_OCR_PAGES = 50
"""Most pages of one PDF that are OCR'd; later text-less pages are left out with a warning."""

MAX_IMAGE_PIXELS = 40_000_000
"""Images larger than this (width x height) are scaled down before OCR, and never decoded beyond it."""

RENDER_SCALE = 2.0
"""PDF points to pixels when a page is rendered for OCR (144 dpi)."""

BLANK_CONTRAST = 48
"""Grey levels (of 255) a pixel must differ from the page's background by to count as ink."""

BLANK_MAX_INK = 50
"""A page or image with at most this many ink pixels is blank: it is not sent to the OCR engine."""

BINARIZE_MIN_SEPARATION = 0.75
"""An image whose grey levels split this cleanly into ink and paper (Otsu's between-class share of the
variance, 0 to 1) is binarised before OCR: compression ringing around letters (JPEG scans) makes RapidOCR drop
the spaces between words, and a clean black-on-white page reads the same either way. Photographs and shaded
pages split less cleanly and are left as they are."""

SWITCHED_OFF = "turned off (FINDLING_OCR=0 or Config.ocr)"
"""``OcrStatus.reason`` when the engine is there but the user turned OCR off."""


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


def enabled(config: Config) -> OcrStatus:
    """``status()`` with the user's switch applied: OCR runs only where both allow it."""
    if not config.ocr:
        return OcrStatus(False, "", SWITCHED_OFF)
    return status()


ENGINE_NAMES = {"rapidocr": "RapidOCR", "tesseract": "Tesseract"}


def describe(config: Config) -> str:
    """One line for people: ``OCR: on (RapidOCR)`` or ``OCR: off (why)``."""
    found = enabled(config)
    if found.available:
        return f"OCR: on ({ENGINE_NAMES.get(found.engine, found.engine)})"
    return f"OCR: off ({found.reason})"


def looks_blank(image: Any) -> bool:
    """Whether ``image`` holds no ink: at most ``BLANK_MAX_INK`` pixels differ from its most common grey level
    by more than ``BLANK_CONTRAST``. Light tints and shading are not ink; dark text on light paper and light
    text on dark paper both are."""
    histogram = image.convert("L").histogram()
    background = max(range(256), key=histogram.__getitem__)
    ink = sum(count for level, count in enumerate(histogram) if abs(level - background) > BLANK_CONTRAST)
    return ink <= BLANK_MAX_INK


_engine_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _rapid() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def _fit(image: Any) -> Any:
    """``image`` as RGB, scaled down to at most ``MAX_IMAGE_PIXELS``, binarised where it is clearly ink on
    paper (``BINARIZE_MIN_SEPARATION``)."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        factor = (MAX_IMAGE_PIXELS / (width * height)) ** 0.5
        image = image.resize((max(1, int(width * factor)), max(1, int(height * factor))))
    gray = image.convert("L")
    threshold, separation = otsu(gray.histogram())
    if separation >= BINARIZE_MIN_SEPARATION:
        return gray.point(lambda level: 255 if level > threshold else 0).convert("RGB")
    return image.convert("RGB")


def otsu(histogram: list[int]) -> tuple[int, float]:
    """Otsu's threshold of a 256-level ``histogram`` (levels at or below it are ink) and how cleanly it
    splits the levels: the between-class share of the variance, 0 (no split) to 1 (two pure levels)."""
    import numpy as np

    counts = np.asarray(histogram[:256], dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 127, 0.0
    p = counts / total
    levels = np.arange(256)
    omega = np.cumsum(p)
    mu = np.cumsum(p * levels)
    mean = mu[-1]
    variance = float((p * (levels - mean) ** 2).sum())
    if variance == 0:
        return 127, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num((mean * omega - mu) ** 2 / (omega * (1 - omega)))
    threshold = int(between.argmax())
    return threshold, float(between[threshold] / variance)


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


class PdfPages:
    """The PDF ``data`` opened once with pypdfium2, for rendering pages; use as a context manager.

    Opening raises what pypdfium2 raises on a file it cannot read (``pypdfium2.PdfiumError``)."""

    def __init__(self, data: bytes) -> None:
        import pypdfium2 as pdfium

        self._document = pdfium.PdfDocument(data)

    def __len__(self) -> int:
        return len(self._document)

    def render(self, index: int) -> Any:
        """Page ``index`` (0-based) as a PIL image at ``RENDER_SCALE``, scaled down to at most
        ``MAX_IMAGE_PIXELS`` before it is drawn."""
        page = self._document[index]
        try:
            width, height = page.get_size()
            scale = RENDER_SCALE
            if width * height * scale * scale > MAX_IMAGE_PIXELS:
                scale = (MAX_IMAGE_PIXELS / max(1.0, width * height)) ** 0.5
            return page.render(scale=scale).to_pil()
        finally:
            page.close()

    def close(self) -> None:
        self._document.close()

    def __enter__(self) -> "PdfPages":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_pdf_page(data: bytes, index: int) -> Any:
    """Page ``index`` (0-based) of the PDF ``data`` as a PIL image at ``RENDER_SCALE``."""
    with PdfPages(data) as pages:
        return pages.render(index)
