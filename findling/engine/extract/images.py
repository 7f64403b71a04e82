"""Images (PNG, JPEG, TIFF): their text, recognised by OCR (``findling.engine.extract.ocr``).

Each image is one page; a multi-page TIFF gives one page per frame, at most ``ocr.MAX_OCR_PAGES`` of them.
Every page's span carries ``ocr=True`` and a label ending in ``ocr.OCR_SUFFIX``. The image's header is read
first: a frame of more than ``ocr.MAX_IMAGE_PIXELS`` pixels is never decoded (a JPEG is decoded at a reduced
scale that fits, the others are refused), so a small file declaring a huge image (a decompression bomb)
costs nothing. A truncated or damaged image is reported as such. With OCR off or no engine installed, the
file is recorded with ``OCR is off: <why>``. An image with no text in it is indexed empty, with a note.
"""
from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, ExtractionError, FileTooLarge
from findling.engine.extract import ocr
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.pdf import clean_page_text
from findling.engine.extract.textutil import short_reason
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})

NO_TEXT_NOTE = "OCR found no text in the image"


def extract_image(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """The text OCR recognises in the image ``data``, a page per frame."""
    engine = ocr.enabled(config)
    if not engine.available:
        raise ExtractionError(f"OCR is off: {engine.reason}")
    image = _open(data)
    try:
        frames = _frame_count(image)
        pages: list[Page] = []
        warnings: list[str] = []
        failed = 0
        if frames > ocr.MAX_OCR_PAGES:
            warnings.append(f"OCR read only the first {ocr.MAX_OCR_PAGES} of {frames} pages of the image")
        for index in range(min(frames, ocr.MAX_OCR_PAGES)):
            try:
                frame = _decoded(image, index)
                text = "" if ocr.looks_blank(frame) else clean_page_text(ocr.recognize(frame))
            except ocr.OcrTimeout as exc:
                if frames == 1:
                    raise ExtractionError(f"OCR gave up: {exc}") from exc
                warnings.append(f"OCR stopped at page {index + 1}: {exc}")
                break  # the engine is still busy with this page; later pages would only queue behind it
            except ExtractionError as exc:
                if frames == 1:
                    raise
                warnings.append(f"page {index + 1} skipped: {exc}")
                failed += 1
                continue
            if text:
                pages.append(Page(number=index + 1, text=text, label=ocr.mark("")))
    finally:
        image.close()
    if not pages:
        if failed == min(frames, ocr.MAX_OCR_PAGES):
            raise CorruptFile(f"no page of the image could be read ({warnings[-1]})")
        return ExtractedText(path=path, text="", title=path.name, kind="image",
                             warnings=(*warnings, NO_TEXT_NOTE))
    text, spans = join_pages(pages)
    spans = tuple(replace(span, ocr=True) for span in spans)
    return ExtractedText(path=path, text=text, title=path.name, pages=spans, kind="image", warnings=tuple(warnings))


def _open(data: bytes) -> Any:
    """The image's header, parsed lazily by Pillow (no pixel is decoded here)."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at twice Image.MAX_IMAGE_PIXELS
        raise FileTooLarge(f"image too large to read: its header declares over {2 * Image.MAX_IMAGE_PIXELS:,} "
                           f"pixels, over the limit of {ocr.MAX_IMAGE_PIXELS:,} pixels") from exc
    except UnidentifiedImageError as exc:
        raise CorruptFile("not a readable image (damaged, or not the format its name says)") from exc
    except Exception as exc:  # a header Pillow trips over
        raise CorruptFile(f"damaged image ({short_reason(exc)})") from exc


def _frame_count(image: Any) -> int:
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception as exc:  # a TIFF whose directory chain is broken
        raise CorruptFile(f"damaged image ({short_reason(exc)})") from exc


def _decoded(image: Any, index: int) -> Any:
    """Frame ``index``, decoded within ``ocr.MAX_IMAGE_PIXELS``, upright (EXIF orientation applied), with any
    transparency laid over white paper."""
    from PIL import Image, ImageOps

    try:
        image.seek(index)
    except Exception as exc:
        raise CorruptFile(f"damaged image ({short_reason(exc)})") from exc
    width, height = image.size
    if width * height > ocr.MAX_IMAGE_PIXELS and image.format == "JPEG":
        # JPEG decodes at 1/2, 1/4 or 1/8 scale, the smallest that is at least the size asked for: asking for
        # half the fitting size gives a scale under the limit whenever 1/8 is small enough
        factor = (ocr.MAX_IMAGE_PIXELS / (width * height)) ** 0.5 / 2
        image.draft("RGB", (max(1, int(width * factor)), max(1, int(height * factor))))
        width, height = image.size
    if width * height > ocr.MAX_IMAGE_PIXELS:
        raise FileTooLarge(f"image too large to read: {width:,} x {height:,} pixels, over the limit of "
                           f"{ocr.MAX_IMAGE_PIXELS:,} pixels")
    try:
        image.load()
        frame = image.copy()
    except Exception as exc:  # OSError("image file is truncated"), zlib and decoder errors, ...
        logger.debug("image decoding failed", exc_info=True)
        raise CorruptFile(f"truncated or damaged image ({short_reason(exc)})") from exc
    if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        frame = Image.new("RGB", rgba.size, "white")
        frame.paste(rgba, mask=rgba.getchannel("A"))
    try:
        return ImageOps.exif_transpose(frame)
    except Exception:  # an unreadable EXIF block: the frame as stored
        return frame
