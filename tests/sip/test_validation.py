"""callvault.sip.validation: the UAS checks of RFC 3261 8.2, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from callvault.sip.message import Request
from callvault.sip.parser import parse
from callvault.sip.validation import Rejection, check_request
from tests.corpus import SIPREC_CORPUS
from tests.sip.torture_expectations import SRS_ALLOWED_METHODS, SRS_BODY_TYPES, SRS_EXTENSIONS

ALLOW = ("Allow", "ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, UPDATE")


def _request(
    method: str = "INVITE",
    uri: str = "sip:srs@example.com",
    extra: str = "",
    body: str = "",
    cseq_method: str | None = None,
) -> Request:
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP src.example.com;branch=z9hG4bK1\r\n"
        "To: <sip:srs@example.com>\r\n"
        "From: <sip:src@example.com>;tag=1\r\n"
        "Call-ID: v1@src\r\n"
        f"CSeq: 1 {cseq_method or method}\r\n"
        f"{extra}"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )
    message = parse(text.encode())
    assert isinstance(message, Request)
    return message


def _check(request: Request) -> Rejection | None:
    return check_request(
        request,
        allowed_methods=SRS_ALLOWED_METHODS,
        supported_extensions=SRS_EXTENSIONS,
        accepted_body_types=SRS_BODY_TYPES,
    )


def test_plain_invite_passes() -> None:
    assert _check(_request(extra="Content-Type: application/sdp\r\n", body="v=0\r\n")) is None


def test_scheme_method_require_body_order() -> None:
    everything_wrong = _request(
        "NEWMETHOD",
        "tel:+123",
        extra="Require: foo\r\nContent-Type: text/x\r\n",
        body="x",
    )
    assert _check(everything_wrong) == Rejection(416, "Unsupported URI Scheme")
    method_wrong = _request("NEWMETHOD", extra="Require: foo\r\nContent-Type: text/x\r\n", body="x")
    assert _check(method_wrong) == Rejection(501, "Not Implemented", (ALLOW,))
    require_wrong = _request(extra="Require: foo\r\nContent-Type: text/x\r\n", body="x")
    assert _check(require_wrong) == Rejection(420, "Bad Extension", (("Unsupported", "foo"),))
    body_wrong = _request(extra="Content-Type: text/x\r\n", body="x")
    assert _check(body_wrong) == Rejection(
        415, "Unsupported Media Type", (("Accept", ", ".join(sorted(SRS_BODY_TYPES))),)
    )


def test_known_but_unserved_method_gets_405() -> None:
    assert _check(_request("REGISTER")) == Rejection(405, "Method Not Allowed", (ALLOW,))
    assert _check(_request("PRACK")) == Rejection(405, "Method Not Allowed", (ALLOW,))
    only_known = check_request(
        _request("REGISTER"),
        allowed_methods=frozenset({"INVITE"}),
        supported_extensions=frozenset(),
        accepted_body_types=frozenset(),
        known_methods=frozenset({"INVITE"}),
    )
    assert only_known == Rejection(501, "Not Implemented", (("Allow", "INVITE"),))


def test_cseq_mismatch_of_an_allowed_extension_method() -> None:
    request = _request("NEWMETHOD", cseq_method="INVITE")
    verdict = check_request(
        request,
        allowed_methods=frozenset({"NEWMETHOD"}),
        supported_extensions=frozenset(),
        accepted_body_types=frozenset(),
    )
    assert verdict == Rejection(400, "CSeq method does not match request method")


def test_require_lists_only_unknown_tags_case_insensitively() -> None:
    request = _request(extra="Require: SIPREC, x-one\r\nRequire: timer,x-two\r\n")
    assert _check(request) == Rejection(420, "Bad Extension", (("Unsupported", "x-one, x-two"),))
    assert _check(_request(extra="Require: siprec, timer\r\n")) is None
    # Proxy-Require is for proxies (RFC 3261 8.2.2.3): a UAS ignores it.
    assert _check(_request(extra="Proxy-Require: x-proxy\r\n")) is None


def test_ack_is_never_rejected_and_cancel_ignores_require_and_body() -> None:
    assert _check(_request("ACK", "tel:+1", extra="Require: x\r\n")) is None
    cancel = _request("CANCEL", extra="Require: x\r\nContent-Type: text/x\r\n", body="x")
    assert _check(cancel) is None


def test_body_without_content_type_or_with_encoding() -> None:
    assert _check(_request(body="v=0")) == Rejection(400, "Missing Content-Type header")
    media = "Content-Type: Multipart/Mixed ; boundary=x\r\n"
    assert _check(_request(extra=media, body="--x--")) is None
    gzip = _request(extra=media + "Content-Encoding: gzip\r\n", body="--x--")
    assert _check(gzip) == Rejection(
        415, "Unsupported Media Type", (("Accept-Encoding", "identity"),)
    )
    identity = _request(extra=media + "e: identity\r\n", body="--x--")
    assert _check(identity) is None
    # No body: Content-Type is not looked at.
    assert _check(_request(extra="Content-Type: text/x\r\n")) is None


def test_accept_header_is_not_checked() -> None:
    request = _request(
        extra="Accept: application/rs-metadata\r\nContent-Type: application/sdp\r\n", body="v=0"
    )
    assert _check(request) is None


@pytest.mark.parametrize("path", sorted(SIPREC_CORPUS.glob("*.sip")), ids=lambda p: p.stem)
def test_every_siprec_message_passes(path: Path) -> None:
    request = parse(path.read_bytes())
    assert isinstance(request, Request)
    assert _check(request) is None


def test_avaya_update_needs_the_draft_metadata_type() -> None:
    # Avaya SBCE sends Content-Type: application/rs-metadata (no "+xml") in UPDATE.
    request = parse((SIPREC_CORPUS / "avaya_sbce_update_new_participant.sip").read_bytes())
    assert isinstance(request, Request)
    without = check_request(
        request,
        allowed_methods=SRS_ALLOWED_METHODS,
        supported_extensions=SRS_EXTENSIONS,
        accepted_body_types=SRS_BODY_TYPES - {"application/rs-metadata"},
    )
    assert without is not None and without.status == 415
