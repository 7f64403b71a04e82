"""Plain text, light markup, data files and source code.

The bytes are decoded by ``decode.decode_text`` (BOMs, UTF-8, UTF-16, cp1252, latin-1; binary is
rejected), newlines are normalised to ``\\n`` and a title is found: front-matter ``title:``, the first
Markdown ``#`` heading, a reST/setext title (a line underlined with ``===`` or ``---``), an Org
``#+TITLE:``, else the file name.
"""
from __future__ import annotations

import re
from pathlib import Path

from findling.engine.config import Config
from findling.engine.extract.decode import decode_text
from findling.engine.extract.textutil import normalise_newlines, one_line
from findling.engine.records import ExtractedText

PROSE_SUFFIXES: frozenset[str] = frozenset(
    """
    .txt .text .md .markdown .mdown .mkd .rst .rest .org .adoc .asciidoc .tex .latex .bib .csv .tsv
    .log .json .jsonl .ndjson .yaml .yml .toml .ini .cfg .conf .xml .properties .srt .vtt .textile
    """.split()
)

SOURCE_SUFFIXES: frozenset[str] = frozenset(
    """
    .py .pyi .pyx .pxd .c .h .cpp .hpp .cc .hh .cxx .hxx .ino .java .js .mjs .cjs .ts .tsx .jsx .go
    .rs .rb .php .sh .bash .zsh .fish .ps1 .bat .cmd .sql .r .rmd .jl .lua .kt .kts .swift .scala .cs
    .fs .fsx .vb .m .mm .pl .pm .hs .lhs .ml .mli .ex .exs .erl .hrl .clj .cljs .edn .dart .groovy
    .gradle .css .scss .sass .less .vue .svelte .el .lisp .scm .rkt .vim .nim .zig .d .f .f90 .f95
    .for .asm .s .proto .graphql .gql .cmake .mk .tf .hcl .nix .dockerfile .sol .v .sv .vhd .vhdl
    .tcl .awk .sed .diff .patch
    """.split()
)

PROSE_NAMES: frozenset[str] = frozenset(
    "readme license licence copying authors contributors changelog changes news install notice todo".split()
)
SOURCE_NAMES: frozenset[str] = frozenset(
    "makefile gnumakefile dockerfile containerfile jenkinsfile vagrantfile gemfile rakefile procfile".split()
)

_TITLE_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd", ".rst", ".rest", ".txt", ".text", ""})
_SCAN_LINES = 200
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_UNDERLINE = re.compile(r"^ {0,3}(=+|-+|~+|\*+|\^+|#+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_ORG_TITLE = re.compile(r"^#\+title:[ \t]*(.+?)[ \t]*$", re.IGNORECASE)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$")


def kind_for(path: Path) -> str | None:
    """``"text"`` or ``"source"`` for a file this module reads, else None."""
    suffix = path.suffix.lower()
    if suffix in PROSE_SUFFIXES:
        return "text"
    if suffix in SOURCE_SUFFIXES:
        return "source"
    name = path.name.lower()
    if name in PROSE_NAMES:
        return "text"
    if name in SOURCE_NAMES:
        return "source"
    return None


def extract_plain(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of a plain-text, markup, data or source file (``data`` is its whole content)."""
    del config  # the caller applies the size and length limits
    decoded = decode_text(data)
    text = normalise_newlines(decoded.text)
    kind = kind_for(path) or "text"
    title = find_title(text, suffix=path.suffix.lower()) if kind == "text" else ""
    return ExtractedText(
        path=path,
        text=text,
        title=title or path.name,
        kind=kind,
        warnings=decoded.warnings,
    )


def find_title(text: str, *, suffix: str) -> str:
    """The document title written in ``text`` (see the module docstring), or ``""``."""
    lines = text.split("\n", _SCAN_LINES)[:_SCAN_LINES]
    if suffix == ".org":
        return _first_match(_ORG_TITLE, lines)
    if suffix not in _TITLE_SUFFIXES:
        return ""
    front = _front_matter_title(lines)
    if front:
        return front
    return _heading_title(lines)


def _first_match(pattern: re.Pattern[str], lines: list[str]) -> str:
    for line in lines:
        match = pattern.match(line)
        if match:
            return _clean_title(match.group(1))
    return ""


def _front_matter_title(lines: list[str]) -> str:
    """``title:`` inside a leading ``---`` ... ``---`` YAML block (Jekyll, Hugo, Pandoc)."""
    if not lines or lines[0].strip() != "---":
        return ""
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            return ""
        match = _FRONT_TITLE.match(line)
        if match:
            return _clean_title(match.group(1).strip("\"'"))
    return ""


def _heading_title(lines: list[str]) -> str:
    """The first ATX heading or underlined (setext / reST) title outside code fences."""
    in_fence = False
    previous = ""
    start = _skip_front_matter(lines)
    for line in lines[start:]:
        if _FENCE.match(line):
            in_fence = not in_fence
            previous = ""
            continue
        if in_fence:
            continue
        atx = _ATX.match(line)
        if atx:
            return _clean_title(atx.group(1))
        if _is_underline_of(line, previous):
            return _clean_title(previous)
        previous = line
    return ""


def _is_underline_of(line: str, previous: str) -> bool:
    """Whether ``line`` underlines ``previous`` as a setext or reST title (``Title`` / ``=====``)."""
    if not previous.strip() or _UNDERLINE.match(previous) or not _UNDERLINE.match(line):
        return False
    return len(line.strip()) >= min(3, len(previous.strip()))


def _skip_front_matter(lines: list[str]) -> int:
    if not lines or lines[0].strip() != "---":
        return 0
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return index + 1
    return 0


def _clean_title(raw: str) -> str:
    return one_line(raw)
