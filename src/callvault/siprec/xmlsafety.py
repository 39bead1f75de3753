"""Bounded, defused XML parsing for rs-metadata bodies, with repair of known faults.

A peer's XML is parsed with defusedxml: a DTD is refused outright (so entity bombs and
external entities never expand; the refusal comes at ``<!DOCTYPE`` before any
declaration is read, so a billion-laughs document costs no memory). The size is checked
before parsing and the nesting depth while parsing, at each start tag, so an over-deep
document is refused before its tree grows.

Some SRCs send XML that is not well formed in a way whose meaning is still plain:
Cisco CUBE copies display names with a bare ``&`` into ``<name>``; some bodies start
with blank lines before ``<?xml``; some copy a Windows-1252 name into a UTF-8 document.
``parse_xml`` repairs those (escapes the stray ``&``, drops the leading blanks,
re-encodes the bytes), parses again and says so in ``warnings``; anything else that is
not well formed raises ``MetadataError`` (status 400).

Every element's byte span in the parsed bytes is recorded so that extension data can
be kept verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

__all__ = ["MetadataError", "ParsedXml", "parse_xml"]

_AMPERSAND = re.compile(rb"&")
_REFERENCE = re.compile(rb"&(?:amp|lt|gt|quot|apos|#[0-9]{1,8}|#x[0-9A-Fa-f]{1,8});")
_ENCODING_DECLARATION = re.compile(
    rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']"
)
_PREFIX = "rs-metadata rejected: "


class MetadataError(ValueError):
    """An rs-metadata body the SRS refuses; answer ``status`` (400) with ``reason``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class ParsedXml:
    """A parsed document: its root, the bytes it was parsed from and element spans."""

    root: Element
    source: bytes
    spans: dict[int, tuple[int, int]]
    well_formed: bool
    warnings: tuple[str, ...]

    def raw(self, element: Element) -> str:
        """The element's text exactly as it appears in ``source``."""
        span = self.spans.get(id(element))
        if span is None:
            return ""
        return self.source[span[0] : span[1]].decode("utf-8", "replace")


class _TooDeepError(Exception):
    pass


class _SpanBuilder:
    """A TreeBuilder target that bounds depth and records where each element lies."""

    def __init__(self, source: bytes, max_depth: int) -> None:
        self._builder = TreeBuilder()
        self._source = source
        self._max_depth = max_depth
        self._depth = 0
        self._open: list[tuple[Element, int, int]] = []
        self.spans: dict[int, tuple[int, int]] = {}
        self.parser: DefusedXMLParser | None = None

    def _position(self) -> int:
        assert self.parser is not None
        index: int = self.parser.parser.CurrentByteIndex
        return index

    def start(self, tag: str, attrib: dict[str, str]) -> Element:
        self._depth += 1
        if self._depth > self._max_depth:
            raise _TooDeepError
        element = self._builder.start(tag, attrib)
        start = self._position()
        start_tag_end = _tag_end(self._source, start)
        # expat reports an empty-element tag's end after the tag, not at it.
        empty = self._source[start_tag_end - 2 : start_tag_end] == b"/>"
        self._open.append((element, start, start_tag_end if empty else -1))
        return element

    def end(self, tag: str) -> Element:
        self._depth -= 1
        element = self._builder.end(tag)
        opened, start, empty_end = self._open.pop()
        end = empty_end if empty_end >= 0 else _tag_end(self._source, self._position())
        self.spans[id(opened)] = (start, end)
        return element

    def data(self, text: str) -> None:
        self._builder.data(text)

    def close(self) -> Element:
        return self._builder.close()


def _tag_end(source: bytes, start: int) -> int:
    """The offset just past the ``>`` closing the tag that starts at ``start``."""
    quote = 0
    for index in range(start, len(source)):
        byte = source[index]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):
            quote = byte
        elif byte == 0x3E:
            return index + 1
    return len(source)


def _parse_once(data: bytes, max_depth: int) -> tuple[Element, dict[int, tuple[int, int]]]:
    target = _SpanBuilder(data, max_depth)
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    target.parser = parser
    parser.feed(data)
    root: Element = parser.close()
    return root, target.spans


def _parse_or_reject(
    data: bytes, max_depth: int
) -> tuple[Element, dict[int, tuple[int, int]]] | ParseError:
    """Parse once; a hostile document raises ``MetadataError``, a broken one is returned."""
    try:
        return _parse_once(data, max_depth)
    except ParseError as exc:
        return exc
    except _TooDeepError:
        raise MetadataError(f"{_PREFIX}nesting deeper than {max_depth} elements") from None
    except (DTDForbidden, EntitiesForbidden):
        raise MetadataError(f"{_PREFIX}DTD/entity declarations are forbidden") from None
    except ExternalReferenceForbidden:
        raise MetadataError(f"{_PREFIX}external references are forbidden") from None
    except (LookupError, ValueError):
        # pyexpat hands encodings it does not know to Python codecs: an unknown name
        # is a LookupError, a multi-byte or non-text codec a ValueError.
        raise MetadataError(f"{_PREFIX}unsupported character encoding") from None


def parse_xml(data: bytes, *, max_bytes: int, max_depth: int) -> ParsedXml:
    """Parse ``data`` safely; raises ``MetadataError`` with the reason to answer."""
    if len(data) > max_bytes:
        raise MetadataError(f"{_PREFIX}{len(data)} bytes exceeds the {max_bytes}-byte limit")
    if not data.strip():
        raise MetadataError(f"{_PREFIX}empty body")
    first = _parse_or_reject(data, max_depth)
    if not isinstance(first, ParseError):
        return ParsedXml(first[0], data, first[1], True, ())
    repaired, repairs = _repair(data)
    second = _parse_or_reject(repaired, max_depth) if repairs else first
    if isinstance(second, ParseError):
        raise MetadataError(f"{_PREFIX}not well-formed XML ({first})")
    warning = f"rs-metadata repaired: {'; '.join(repairs)} (was: {first})"
    return ParsedXml(second[0], repaired, second[1], False, (warning,))


def _repair(data: bytes) -> tuple[bytes, list[str]]:
    repairs: list[str] = []
    stripped = data.lstrip()
    if len(stripped) != len(data) and stripped.startswith(b"<?xml"):
        data = stripped
        repairs.append("removed blank space before the XML declaration")
    if _declared_encoding(data) in (None, "utf-8", "utf8"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            # A display name copied as Latin-1/cp1252 into a document that says UTF-8.
            data = data.decode("cp1252", "replace").encode("utf-8")
            repairs.append("re-encoded non-UTF-8 bytes as Windows-1252")
    data, stray = _escape_stray_ampersands(data)
    if stray:
        repairs.append(f"escaped {stray} unescaped '&'")
    return data, repairs


def _declared_encoding(data: bytes) -> str | None:
    match = _ENCODING_DECLARATION.match(data)
    return match.group(1).decode("ascii").lower() if match else None


def _escape_stray_ampersands(data: bytes) -> tuple[bytes, int]:
    # Without a DTD only the five predefined entities and character references exist:
    # a bare "&" or "&nbsp;" is text the SRC forgot to escape.
    out = bytearray()
    pos = 0
    count = 0
    for match in _AMPERSAND.finditer(data):
        start = match.start()
        if _REFERENCE.match(data, start):
            continue
        out += data[pos:start] + b"&amp;"
        pos = start + 1
        count += 1
    out += data[pos:]
    return bytes(out), count
