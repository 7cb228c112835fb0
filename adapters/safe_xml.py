"""Parsing partner XML without the classic XML attacks.

A partner's XML is untrusted input. ``parse_xml`` reads it with expat directly and
refuses, before any of it is used:

* any document type declaration (so no internal or external entities: no "billion
  laughs", no XXE file reads), and any entity declaration or external reference;
* documents over ``MAX_XML_BYTES``, deeper than ``MAX_DEPTH`` or with more than
  ``MAX_ELEMENTS`` elements;
* text that is not in the declared charset, or a declaration naming another charset
  than the one the transport promised (the caller says which one it expects).

This is what ``defusedxml`` does for the standard library, in forty lines we can read,
so the project needs no extra dependency for it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import NoReturn
from xml.parsers import expat

from adapters.wire_errors import MalformedMessage

MAX_XML_BYTES = 256 * 1024
MAX_DEPTH = 12
MAX_ELEMENTS = 4000

_DECLARATION = re.compile(r"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def decode_xml_bytes(data: bytes, charset: str) -> str:
    """Strictly decode ``data`` as ``charset``; the XML declaration must agree with it."""
    if len(data) > MAX_XML_BYTES:
        raise MalformedMessage(f"the XML is larger than {MAX_XML_BYTES} bytes")
    try:
        text = data.decode(charset)
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"the XML is not valid {charset.upper()} text") from exc
    head = _DECLARATION.match(text.lstrip("\ufeff")[:200])
    if head is not None and head.group(1).upper() != charset.upper():
        raise MalformedMessage(
            f"the XML declares encoding {head.group(1)[:20]}, expected {charset.upper()}"
        )
    return text


def parse_xml(text: str) -> ET.Element:
    """The root element of ``text``; raises ``MalformedMessage`` for anything unsafe or bad."""
    builder = ET.TreeBuilder()
    # The text is already decoded: pass UTF-8 bytes and tell expat so, whatever the
    # declaration says (ParserCreate's encoding overrides the document's).
    parser = expat.ParserCreate(encoding="utf-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0
    count = 0

    def refuse(*_: object) -> NoReturn:
        raise MalformedMessage("the XML carries a DTD or entities, which are not accepted")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > MAX_DEPTH:
            raise MalformedMessage(f"the XML is nested deeper than {MAX_DEPTH} levels")
        if count > MAX_ELEMENTS:
            raise MalformedMessage(f"the XML has more than {MAX_ELEMENTS} elements")
        builder.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(text.encode("utf-8"), True)
    except expat.ExpatError as exc:
        raise MalformedMessage(
            f"the XML is not well-formed ({expat.ErrorString(exc.code)})"
        ) from exc
    except UnicodeEncodeError as exc:
        raise MalformedMessage("the XML holds characters that cannot be encoded") from exc
    try:
        return builder.close()
    except AssertionError as exc:  # TreeBuilder asserts on an empty or unbalanced build
        raise MalformedMessage("the XML has no root element") from exc
