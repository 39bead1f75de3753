"""Every RFC 4475 / RFC 5118 torture message against the parser and ``check_request``."""

from __future__ import annotations

import json

import pytest

from callvault.sdp.answer import choose_streams
from callvault.sdp.session import SessionDescription
from callvault.sip.errors import SipSyntaxError
from callvault.sip.message import Request, Response
from callvault.sip.parser import parse
from callvault.sip.validation import check_request
from tests.corpus import TORTURE_CORPUS
from tests.sip.torture_expectations import (
    EXPECTED,
    SRS_ALLOWED_METHODS,
    SRS_BODY_TYPES,
    SRS_EXTENSIONS,
    WIRE_FILES,
    Expectation,
    stage_of,
)

INDEX = json.loads((TORTURE_CORPUS / "index.json").read_text())["messages"]


def _check(request: Request) -> tuple[int, str] | None:
    rejection = check_request(
        request,
        allowed_methods=SRS_ALLOWED_METHODS,
        supported_extensions=SRS_EXTENSIONS,
        accepted_body_types=SRS_BODY_TYPES,
    )
    return None if rejection is None else (rejection.status, rejection.reason)


def test_table_covers_every_file_in_the_torture_folder() -> None:
    on_disk = {p.relative_to(TORTURE_CORPUS).as_posix() for p in TORTURE_CORPUS.rglob("*.dat")}
    assert set(EXPECTED) == on_disk
    assert len(on_disk) == 49 + 12 + 12


def test_table_covers_every_index_entry_and_wire_files_are_what_e2e_sends() -> None:
    for entry in INDEX:
        assert entry["file"] in EXPECTED
        if "wire_file" in entry:
            assert entry["wire_file"] in EXPECTED
            assert entry["wire_file"] in WIRE_FILES
            assert entry["file"] not in WIRE_FILES
        else:
            assert entry["file"] in WIRE_FILES
    assert len(WIRE_FILES) == 61


def test_verdicts_agree_with_the_table() -> None:
    """Valid messages parse; invalid ones are refused unless the table says why not."""
    # baddate: the RFC says not to reject unless the Date is used; mismatch02: 501.
    liberal = {"baddate.dat", "mismatch02.dat"}
    for entry in INDEX:
        expectation = EXPECTED[entry.get("wire_file", entry["file"])]
        if entry["verdict"] == "valid":
            assert expectation.parses, entry["file"]
        elif entry["verdict"] == "invalid" and entry["file"] not in liberal:
            assert not expectation.parses, entry["file"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message(name: str) -> None:
    expectation = EXPECTED[name]
    data = (TORTURE_CORPUS / name).read_bytes()
    if not expectation.parses:
        with pytest.raises(SipSyntaxError) as info:
            parse(data)
        assert (info.value.status, info.value.reason) == (expectation.reply, expectation.reason)
        if expectation.reply is not None:
            # A refused request can still be answered: its headers were read.
            assert info.value.partial is not None
            assert info.value.partial.headers.get("Via") is not None
        return
    message = parse(data)
    stage = stage_of(expectation)
    if isinstance(message, Response):
        assert stage == "drop"
        return
    verdict = _check(message)
    if stage == "validation":
        assert verdict == (expectation.reply, expectation.reason)
        return
    assert stage == "core"
    assert verdict is None
    _assert_core_reply_is_justified(message, expectation)


def _assert_core_reply_is_justified(request: Request, expectation: Expectation) -> None:
    """The facts the table's 200/481 rely on are true of the message."""
    if expectation.reply == 481:
        assert request.method in ("INVITE", "BYE")
        assert request.to_tag, "481 needs a To tag naming a dialog we do not have"
    elif expectation.reply == 488:
        # Nothing in the offer is recordable (RFC 3261 21.4.26 Not Acceptable Here).
        assert request.method == "INVITE" and request.to_tag is None
        offer = SessionDescription.parse(request.body)
        assert offer.media and choose_streams(offer) == [None] * len(offer.media)
    else:
        assert expectation.reply == 200
        assert request.to_tag is None
        assert request.method in ("INVITE", "OPTIONS")
        if request.method == "INVITE":
            assert request.headers.get("Content-Type") == "application/sdp"
            assert request.body.startswith(b"v=0")


def test_fatal_content_length_errors_close_a_stream() -> None:
    for name in ("ncl.dat", "mcl01.dat"):
        with pytest.raises(SipSyntaxError) as info:
            parse((TORTURE_CORPUS / name).read_bytes())
        assert info.value.fatal_for_stream
    with pytest.raises(SipSyntaxError) as info:
        parse((TORTURE_CORPUS / "clerr.dat").read_bytes())
    assert not info.value.fatal_for_stream  # on a stream it just waits for more bytes


def test_rejections_carry_the_headers_rfc_3261_requires() -> None:
    cases = {
        "bext01.dat": ("Unsupported", "nothingSupportsThis, nothingSupportsThisEither"),
        "intmeth.dat": ("Allow", "ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, UPDATE"),
        "escnull.dat": ("Allow", "ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, UPDATE"),
    }
    for name, header in cases.items():
        request = parse((TORTURE_CORPUS / name).read_bytes())
        assert isinstance(request, Request)
        rejection = check_request(
            request,
            allowed_methods=SRS_ALLOWED_METHODS,
            supported_extensions=SRS_EXTENSIONS,
            accepted_body_types=SRS_BODY_TYPES,
        )
        assert rejection is not None
        assert rejection.headers == (header,)
    invut = parse((TORTURE_CORPUS / "invut.dat").read_bytes())
    assert isinstance(invut, Request)
    rejection = check_request(
        invut,
        allowed_methods=SRS_ALLOWED_METHODS,
        supported_extensions=SRS_EXTENSIONS,
        accepted_body_types=SRS_BODY_TYPES,
    )
    assert rejection is not None
    assert rejection.headers == (("Accept", ", ".join(sorted(SRS_BODY_TYPES))),)
