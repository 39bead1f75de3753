"""The SIP transaction layer: matching, retransmissions and timers, with time injected."""

from __future__ import annotations

import contextlib
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault.sip.dialog import make_cancel, new_branch
from callvault.sip.events import (
    AckReceived,
    AckTimedOut,
    CancelReceived,
    Event,
    Peer,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    TransactionTerminated,
    TransactionTimedOut,
)
from callvault.sip.headers import Headers
from callvault.sip.message import Request, Response, make_response, parse_message
from callvault.sip.timers import ALIVE, INITIAL, TABLES, Arm, Input, Kind, State, Timer
from callvault.sip.transaction import TransactionLayer, TransactionStateError
from tests.corpus import TORTURE_CORPUS

UDP = Peer("udp", "192.0.2.10", 5060)
TCP = Peer("tcp", "192.0.2.10", 5060, connection_id=7)
BRANCH = "z9hG4bK776asdhds"


def request(
    method: str = "INVITE",
    *,
    branch: str | None = BRANCH,
    sent_by: str = "192.0.2.10:5060",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    from_tag: str | None = "src-1",
    call_id: str = "a84b4c76e66710@192.0.2.10",
    transport: str = "UDP",
) -> Request:
    via = f"SIP/2.0/{transport} {sent_by}" + (f";branch={branch}" if branch else "")
    headers = Headers(
        [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", "<sip:src@example.com>" + (f";tag={from_tag}" if from_tag else "")),
            ("To", "<sip:srs@example.net>" + (f";tag={to_tag}" if to_tag else "")),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {cseq_method or method}"),
            ("Contact", "<sip:src@192.0.2.10:5060>"),
        ]
    )
    return Request(method, "sip:srs@example.net", headers)


def ack_for(invite: Request, response: Response, *, branch: str | None = None) -> Request:
    """The ACK a UAC sends: same branch for a non-2xx, a new one for a 2xx."""
    ack = request(
        "ACK",
        branch=branch or invite.branch,
        cseq=invite.cseq[0],
        to_tag=response.to_tag,
        from_tag=invite.from_tag,
        call_id=invite.call_id,
    )
    ack.headers.set("Via", invite.headers.get_all("Via")[0])
    if branch:
        ack.headers.set("Via", f"SIP/2.0/UDP 192.0.2.10:5060;branch={branch}")
    return ack


def sent(events: list[Event]) -> list[Request | Response]:
    return [e.message for e in events if isinstance(e, SendMessage)]


def statuses(events: list[Event]) -> list[int]:
    return [m.status for m in sent(events) if isinstance(m, Response)]


def run_until(layer: TransactionLayer, end: float) -> list[tuple[float, Event]]:
    """Fire timers at their deadlines up to ``end``, recording (time, event)."""
    out: list[tuple[float, Event]] = []
    deadline = layer.get_timer()
    while deadline is not None and deadline <= end:
        out.extend((deadline, e) for e in layer.handle_timer(deadline))
        deadline = layer.get_timer()
    return out


def new_invite_tx(layer: TransactionLayer, peer: Peer = UDP, **kw: object) -> tuple[Request, str]:
    invite = request("INVITE", **kw)  # type: ignore[arg-type]
    events = layer.receive_request(invite, peer, 0.0)
    received = [e for e in events if isinstance(e, RequestReceived)]
    assert len(received) == 1
    return invite, received[0].transaction_id


# -- INVITE server transaction ----------------------------------------------------------


def test_new_invite_gets_100_trying_then_goes_to_the_tu() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    invite.headers.add("Timestamp", "54.3")
    events = layer.receive_request(invite, UDP, 0.0)
    assert len(events) == 2
    trying, received = events
    assert isinstance(trying, SendMessage) and trying.peer == UDP
    assert isinstance(trying.message, Response) and trying.message.status == 100
    assert trying.message.to_tag is None  # 8.2.6.2: no tag on a 100
    assert trying.message.headers.get("CSeq") == "1 INVITE"
    assert trying.message.headers.get("Timestamp") == "54.3"  # 8.2.6.1
    assert received == RequestReceived(invite, UDP, received.transaction_id)  # type: ignore[union-attr]
    assert len(layer) == 1
    assert layer.get_timer() is None  # Proceeding waits for the TU, no timer


def test_retransmitted_invite_is_absorbed_and_gets_the_last_provisional() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    assert statuses(layer.receive_request(invite, UDP, 0.3)) == [100]
    ringing = make_response(invite, 180, "Ringing", to_tag="srs-1")
    assert statuses(layer.send_response(tx, ringing, 0.4)) == [180]
    again = layer.receive_request(invite, UDP, 0.9)
    assert sent(again) == [ringing]  # and no second RequestReceived
    assert len(layer) == 1


def test_non_2xx_final_is_retransmitted_by_timer_g_until_timer_h() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    busy = make_response(invite, 486, "Busy Here", to_tag="srs-1")
    assert sent(layer.send_response(tx, busy, 0.0)) == [busy]
    timeline = run_until(layer, 100.0)
    resent = [t for t, e in timeline if isinstance(e, SendMessage)]
    # Timer G: T1 doubling to T2 (0.5, 1, 2, 4, 4, ...), until Timer H at 64*T1.
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(e.message is busy for _, e in timeline if isinstance(e, SendMessage))
    assert timeline[-2:] == [
        (32.0, TransactionTimedOut(tx, "INVITE")),
        (32.0, TransactionTerminated(tx)),
    ]
    assert len(layer) == 0


def test_ack_for_a_non_2xx_is_absorbed_and_timer_i_ends_the_transaction() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    busy = make_response(invite, 486, "Busy Here", to_tag="srs-1")
    layer.send_response(tx, busy, 0.0)
    assert sent(layer.receive_request(invite, UDP, 0.2)) == [busy]  # Completed resends
    ack = ack_for(invite, busy)
    assert layer.receive_request(ack, UDP, 0.7) == []  # Confirmed: not for the TU
    assert layer.receive_request(ack, UDP, 0.8) == []  # ACK retransmission absorbed
    assert layer.receive_request(invite, UDP, 0.9) == []  # so is a late INVITE
    assert layer.get_timer() == 0.7 + 5.0  # Timer I = T4; G and H are gone
    assert run_until(layer, 100.0) == [(5.7, TransactionTerminated(tx))]


def test_over_tcp_no_timer_g_and_the_ack_ends_the_transaction_at_once() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer, TCP, transport="TCP")
    busy = make_response(invite, 486, "Busy Here", to_tag="srs-1")
    assert [type(e) for e in layer.send_response(tx, busy, 0.0)] == [SendMessage]
    assert layer.get_timer() == 32.0  # only Timer H
    assert layer.receive_request(ack_for(invite, busy), TCP, 1.0) == [TransactionTerminated(tx)]
    assert len(layer) == 0 and layer.get_timer() is None


def test_2xx_is_retransmitted_over_udp_until_acked_then_absorbs_invites() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    ok = make_response(invite, 200, "OK", to_tag="srs-1")
    assert sent(layer.send_response(tx, ok, 0.0)) == [ok]
    timeline = run_until(layer, 4.0)
    assert [t for t, e in timeline if isinstance(e, SendMessage)] == [0.5, 1.5, 3.5]
    assert layer.receive_request(invite, UDP, 4.0) == []  # Accepted absorbs INVITEs
    ack = ack_for(invite, ok, branch="z9hG4bKack1")  # a 2xx ACK has its own branch
    assert layer.receive_request(ack, UDP, 4.2) == [AckReceived(ack, UDP)]
    # The ACK stopped the 2xx retransmission; Timer L (64*T1) ends the transaction
    # without AckTimedOut, and ACK retransmissions still reach the TU meanwhile.
    assert layer.receive_request(ack, UDP, 5.0) == [AckReceived(ack, UDP)]
    assert run_until(layer, 100.0) == [(32.0, TransactionTerminated(tx))]


def test_2xx_retransmission_schedule_and_ack_timeout_over_udp() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    ok = make_response(invite, 200, "OK", to_tag="srs-1")
    layer.send_response(tx, ok, 0.0)
    timeline = run_until(layer, 100.0)
    times = [t for t, e in timeline if isinstance(e, SendMessage)]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert timeline[-2:] == [(32.0, AckTimedOut(tx, invite)), (32.0, TransactionTerminated(tx))]


def test_2xx_over_tcp_is_not_retransmitted_but_the_missing_ack_is_reported() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer, TCP, transport="TCP")
    layer.send_response(tx, make_response(invite, 200, "OK", to_tag="srs-1"), 0.0)
    assert layer.get_timer() == 32.0
    assert run_until(layer, 100.0) == [
        (32.0, AckTimedOut(tx, invite)),
        (32.0, TransactionTerminated(tx)),
    ]


def test_tu_may_resend_its_2xx_and_an_ack_on_the_invite_branch_also_counts() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    ok = make_response(invite, 200, "OK", to_tag="srs-1")
    layer.send_response(tx, ok, 0.0)
    assert sent(layer.send_response(tx, ok, 0.1)) == [ok]
    ack = ack_for(invite, ok)  # same branch as the INVITE (as RFC 2543 UAs do)
    assert layer.receive_request(ack, UDP, 0.2) == [AckReceived(ack, UDP)]
    assert [e for _, e in run_until(layer, 100.0)] == [TransactionTerminated(tx)]


def test_an_ack_matching_nothing_still_goes_to_the_tu() -> None:
    layer = TransactionLayer()
    ack = request("ACK", branch="z9hG4bKlate", to_tag="srs-1")
    assert layer.receive_request(ack, UDP, 0.0) == [AckReceived(ack, UDP)]
    assert len(layer) == 0


def test_an_ack_before_any_final_is_ignored() -> None:
    layer = TransactionLayer()
    invite, _ = new_invite_tx(layer)
    assert layer.receive_request(ack_for(invite, make_response(invite, 100, "x")), UDP, 1) == []


# -- CANCEL ---------------------------------------------------------------------------


def test_cancel_is_answered_200_and_the_tu_is_told_to_487_the_invite() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    layer.send_response(tx, make_response(invite, 180, "Ringing", to_tag="srs-1"), 0.1)
    cancel = request("CANCEL")  # same branch and sent-by as the INVITE
    events = layer.receive_request(cancel, UDP, 1.0)
    assert len(events) == 2
    ok, told = events
    assert isinstance(ok, SendMessage) and isinstance(ok.message, Response)
    assert (ok.message.status, ok.message.headers.get("CSeq")) == (200, "1 CANCEL")
    assert ok.message.to_tag == "srs-1"  # 9.2: same To tag as the INVITE's responses
    assert isinstance(told, CancelReceived)
    assert (told.request, told.invite_transaction_id) == (cancel, tx)
    assert sent(layer.receive_request(cancel, UDP, 1.5)) == [ok.message]  # no 2nd event
    terminated = make_response(invite, 487, "Request Terminated", to_tag="srs-1")
    assert statuses(layer.send_response(tx, terminated, 1.6)) == [487]
    assert len(layer) == 2


def test_cancel_without_a_provisional_gets_a_fresh_to_tag() -> None:
    layer = TransactionLayer(rng=Random(7))
    new_invite_tx(layer)
    ok = sent(layer.receive_request(request("CANCEL"), UDP, 1.0))[0]
    assert isinstance(ok, Response) and ok.status == 200 and ok.to_tag


def test_cancel_after_the_final_response_has_no_effect() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    layer.send_response(tx, make_response(invite, 200, "OK", to_tag="srs-1"), 0.1)
    events = layer.receive_request(request("CANCEL"), UDP, 0.2)
    assert statuses(events) == [200]
    assert not any(isinstance(e, CancelReceived) for e in events)


def test_cancel_matching_no_invite_gets_481() -> None:
    layer = TransactionLayer()
    new_invite_tx(layer)
    stray = request("CANCEL", branch="z9hG4bKother")
    assert statuses(layer.receive_request(stray, UDP, 0.0)) == [481]
    # Matching needs sent-by too (17.2.3): same branch from elsewhere is another tx.
    elsewhere = request("CANCEL", sent_by="198.51.100.7:5060")
    assert statuses(layer.receive_request(elsewhere, UDP, 0.0)) == [481]


def test_cancel_for_an_options_transaction_gets_481() -> None:
    layer = TransactionLayer()
    layer.receive_request(request("OPTIONS"), UDP, 0.0)
    assert statuses(layer.receive_request(request("CANCEL"), UDP, 0.0)) == [481]


def test_cancel_over_tcp_leaves_no_transaction_behind() -> None:
    layer = TransactionLayer()
    _, tx = new_invite_tx(layer, TCP, transport="TCP")
    events = layer.receive_request(request("CANCEL", transport="TCP"), TCP, 1.0)
    assert [type(e) for e in events] == [SendMessage, TransactionTerminated, CancelReceived]
    assert events[-1].invite_transaction_id == tx  # type: ignore[union-attr]
    assert len(layer) == 1


# -- non-INVITE server transaction ----------------------------------------------------


def test_non_invite_request_retransmissions_are_answered_from_the_cache() -> None:
    layer = TransactionLayer()
    options = request("OPTIONS")
    (received,) = layer.receive_request(options, UDP, 0.0)
    assert isinstance(received, RequestReceived)
    tx = received.transaction_id
    assert layer.receive_request(options, UDP, 0.5) == []  # Trying: nothing to resend
    ok = make_response(options, 200, "OK", to_tag="srs-1")
    assert sent(layer.send_response(tx, ok, 1.0)) == [ok]
    assert sent(layer.receive_request(options, UDP, 2.0)) == [ok]
    assert layer.get_timer() == 1.0 + 32.0  # Timer J = 64*T1
    assert run_until(layer, 100.0) == [(33.0, TransactionTerminated(tx))]
    # After Timer J the same request is new again.
    assert isinstance(layer.receive_request(options, UDP, 40.0)[0], RequestReceived)


def test_non_invite_provisional_is_resent_in_proceeding() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="srs-1")
    tx = layer.receive_request(bye, UDP, 0.0)[0].transaction_id  # type: ignore[union-attr]
    trying = make_response(bye, 100, "Trying")
    assert sent(layer.send_response(tx, trying, 0.1)) == [trying]
    assert sent(layer.receive_request(bye, UDP, 0.5)) == [trying]
    assert statuses(layer.send_response(tx, make_response(bye, 180, "x"), 0.6)) == [180]
    events = layer.send_response(tx, make_response(bye, 200, "OK"), 0.7)
    assert statuses(events) == [200]


def test_non_invite_over_tcp_terminates_with_its_final_response() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="srs-1", transport="TCP")
    tx = layer.receive_request(bye, TCP, 0.0)[0].transaction_id  # type: ignore[union-attr]
    events = layer.send_response(tx, make_response(bye, 200, "OK"), 0.1)
    assert [type(e) for e in events] == [SendMessage, TransactionTerminated]
    assert len(layer) == 0


def test_tu_misuse_raises_a_local_error() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer)
    with pytest.raises(TransactionStateError, match="No server transaction 'nope'"):
        layer.send_response("nope", make_response(invite, 200, "OK"), 0.0)
    with pytest.raises(TransactionStateError, match="Cannot send status 700"):
        layer.send_response(tx, make_response(invite, 700, "Odd"), 0.0)
    layer.send_response(tx, make_response(invite, 486, "Busy Here", to_tag="t"), 0.0)
    with pytest.raises(TransactionStateError, match="TU sends 2xx is not allowed in state"):
        layer.send_response(tx, make_response(invite, 200, "OK", to_tag="t"), 0.1)
    client_id, _ = layer.send_request(request("OPTIONS", branch="z9hG4bKc1"), UDP, 0.0)
    with pytest.raises(TransactionStateError, match="No server transaction"):
        layer.send_response(client_id, make_response(invite, 200, "OK"), 0.0)


# -- matching -------------------------------------------------------------------------


def test_matching_uses_sent_by_and_method_with_the_branch() -> None:
    layer = TransactionLayer()
    new_invite_tx(layer)
    other_host = request("INVITE", sent_by="198.51.100.7:5060")
    assert any(isinstance(e, RequestReceived) for e in layer.receive_request(other_host, UDP, 0))
    spaced = request("INVITE")
    spaced.headers.set("Via", f"SIP / 2.0 / UDP 192.0.2.10 : 5060 ;branch={BRANCH}")
    assert statuses(layer.receive_request(spaced, UDP, 0.1)) == [100]  # a retransmission
    assert len(layer) == 2


def test_rfc2543_request_without_branch_matches_on_its_fields() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer, branch=None, from_tag=None)
    assert statuses(layer.receive_request(invite, UDP, 0.2)) == [100]  # retransmission
    assert len(layer) == 1
    # Another CSeq, Call-ID or top Via is another transaction.
    for changed in (
        request("INVITE", branch=None, from_tag=None, cseq=2),
        request("INVITE", branch=None, from_tag=None, call_id="other@x"),
        request("INVITE", branch=None, from_tag=None, sent_by="198.51.100.7"),
    ):
        assert any(isinstance(e, RequestReceived) for e in layer.receive_request(changed, UDP, 1))
    assert len(layer) == 4
    busy = make_response(invite, 486, "Busy Here", to_tag="srs-1")
    layer.send_response(tx, busy, 1.0)
    # 17.2.3: the ACK matches when its To tag is the one of our response.
    wrong = ack_for(invite, make_response(invite, 486, "x", to_tag="not-ours"))
    assert layer.receive_request(wrong, UDP, 1.1) == [AckReceived(wrong, UDP)]
    assert layer.receive_request(ack_for(invite, busy), UDP, 1.2) == []
    assert layer.get_timer() == 1.2 + 5.0  # Confirmed: Timer I


def test_rfc2543_cancel_matches_its_invite() -> None:
    layer = TransactionLayer()
    _, tx = new_invite_tx(layer, branch=None, from_tag=None)
    events = layer.receive_request(request("CANCEL", branch=None, from_tag=None), UDP, 0.5)
    assert statuses(events) == [200]
    assert events[-1] == CancelReceived(events[-1].request, UDP, tx)  # type: ignore[union-attr]


def test_rfc2543_ack_for_a_2xx_to_a_reinvite_matches_the_invite() -> None:
    layer = TransactionLayer()
    invite, tx = new_invite_tx(layer, branch=None, to_tag="srs-1")
    ok = make_response(invite, 200, "OK")
    layer.send_response(tx, ok, 0.0)
    ack = ack_for(invite, ok)
    assert layer.receive_request(ack, UDP, 0.1) == [AckReceived(ack, UDP)]
    assert [e for _, e in run_until(layer, 100.0)] == [TransactionTerminated(tx)]


def test_torture_badbranch_bare_cookie_falls_back_to_rfc2543_matching() -> None:
    # RFC 4475 3.2.1: the branch is exactly "z9hG4bK", which identifies nothing.
    options = parse_message((TORTURE_CORPUS / "badbranch.dat").read_bytes())
    assert isinstance(options, Request) and options.branch == "z9hG4bK"
    layer = TransactionLayer()
    (received,) = layer.receive_request(options, UDP, 0.0)
    assert isinstance(received, RequestReceived)
    assert layer.receive_request(options, UDP, 0.5) == []  # retransmission absorbed
    other = request("OPTIONS", branch="z9hG4bK", sent_by="192.0.2.1", call_id="other")
    assert isinstance(layer.receive_request(other, UDP, 0.6)[0], RequestReceived)
    assert len(layer) == 2


def test_torture_inv2543_is_a_transaction_and_its_retransmission_matches() -> None:
    # RFC 4475 3.4.1: no branch, no From tag; legal RFC 2543.
    invite = parse_message((TORTURE_CORPUS / "inv2543.dat").read_bytes())
    assert isinstance(invite, Request) and invite.branch is None and invite.from_tag is None
    layer = TransactionLayer()
    assert [type(e) for e in layer.receive_request(invite, UDP, 0.0)] == [
        SendMessage,
        RequestReceived,
    ]
    assert statuses(layer.receive_request(invite, UDP, 0.5)) == [100]
    assert len(layer) == 1


def test_malformed_requests_are_answered_statelessly_or_dropped() -> None:
    layer = TransactionLayer()
    bad = request("OPTIONS")
    bad.headers.set("CSeq", "one OPTIONS")
    events = layer.receive_request(bad, UDP, 0.0)
    assert statuses(events) == [400] and len(layer) == 0
    bad_ack = request("ACK")
    bad_ack.headers.set("CSeq", "x ACK")
    assert layer.receive_request(bad_ack, UDP, 0.0) == []
    no_via = request("OPTIONS")
    no_via.headers.remove("Via")
    assert layer.receive_request(no_via, UDP, 0.0) == []


def test_cap_on_live_transactions_answers_503_with_retry_after() -> None:
    layer = TransactionLayer(max_transactions=2, retry_after=9)
    new_invite_tx(layer)
    layer.receive_request(request("OPTIONS", branch="z9hG4bKo1"), UDP, 0.0)
    events = layer.receive_request(request("OPTIONS", branch="z9hG4bKo2"), UDP, 0.0)
    assert len(events) == 1 and statuses(events) == [503]
    refusal = sent(events)[0]
    assert refusal.headers.get("Retry-After") == "9" and refusal.to_tag
    assert len(layer) == 2
    # A CANCEL for a live INVITE still gets through, and ACKs are never refused.
    assert any(
        isinstance(e, CancelReceived) for e in layer.receive_request(request("CANCEL"), UDP, 0)
    )
    ack = request("ACK", branch="z9hG4bKa", to_tag="x")
    assert layer.receive_request(ack, UDP, 0.0) == [AckReceived(ack, UDP)]


# -- client transactions -----------------------------------------------------------------


def test_client_invite_timer_a_doubles_without_cap_until_timer_b() -> None:
    layer = TransactionLayer()
    invite = request("INVITE", branch=new_branch(Random(1)))
    tx, events = layer.send_request(invite, UDP, 0.0)
    assert events == [SendMessage(invite, UDP)]
    timeline = run_until(layer, 100.0)
    assert [t for t, e in timeline if isinstance(e, SendMessage)] == [
        0.5,
        1.5,
        3.5,
        7.5,
        15.5,
        31.5,
    ]
    assert timeline[-2:] == [
        (32.0, TransactionTimedOut(tx, "INVITE")),
        (32.0, TransactionTerminated(tx)),
    ]


def test_client_invite_over_tcp_only_has_timer_b() -> None:
    layer = TransactionLayer()
    tx, _ = layer.send_request(request("INVITE", transport="TCP"), TCP, 0.0)
    assert run_until(layer, 100.0) == [
        (32.0, TransactionTimedOut(tx, "INVITE")),
        (32.0, TransactionTerminated(tx)),
    ]


def test_client_invite_acks_a_failure_itself_and_absorbs_its_retransmissions() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    invite.headers.add("Route", "<sip:proxy.example.com;lr>")
    tx, _ = layer.send_request(invite, UDP, 0.0)
    ringing = make_response(invite, 180, "Ringing", to_tag="uas-1")
    assert layer.receive_response(ringing, UDP, 0.2) == [ResponseReceived(ringing, tx)]
    assert layer.get_timer() is None  # Proceeding: no more retransmission, no Timer B
    busy = make_response(invite, 486, "Busy Here", to_tag="uas-1")
    events = layer.receive_response(busy, UDP, 1.0)
    assert events[0] == ResponseReceived(busy, tx)
    (ack,) = sent(events)
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.uri == invite.uri
    assert ack.branch == invite.branch  # 17.1.1.3: the ACK is part of the transaction
    assert ack.headers.get("CSeq") == "1 ACK" and ack.to_tag == "uas-1"
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    assert sent(layer.receive_response(busy, UDP, 2.0)) == [ack]  # no 2nd ResponseReceived
    assert layer.receive_response(ringing, UDP, 2.1) == []
    assert run_until(layer, 100.0) == [(33.0, TransactionTerminated(tx))]  # Timer D


def test_client_invite_failure_over_tcp_ends_with_the_ack() -> None:
    layer = TransactionLayer()
    invite = request("INVITE", transport="TCP")
    tx, _ = layer.send_request(invite, TCP, 0.0)
    events = layer.receive_response(make_response(invite, 503, "x", to_tag="u"), TCP, 1)
    assert [type(e) for e in events] == [ResponseReceived, SendMessage, TransactionTerminated]
    assert events[-1] == TransactionTerminated(tx)


def test_client_invite_2xx_goes_to_accepted_and_passes_retransmissions() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    tx, _ = layer.send_request(invite, UDP, 0.0)
    ok = make_response(invite, 200, "OK", to_tag="uas-1")
    assert layer.receive_response(ok, UDP, 0.1) == [ResponseReceived(ok, tx)]
    assert layer.receive_response(ok, UDP, 0.6) == [ResponseReceived(ok, tx)]  # TU re-ACKs
    assert layer.receive_response(make_response(invite, 180, "x"), UDP, 0.7) == []
    assert run_until(layer, 100.0) == [(32.1, TransactionTerminated(tx))]  # Timer M


def test_cancelled_client_invite_gives_up_64_t1_after_the_cancel() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    tx, _ = layer.send_request(invite, UDP, 0.0)
    layer.receive_response(make_response(invite, 180, "Ringing", to_tag="u"), UDP, 0.1)
    cancel = make_cancel(invite)
    assert cancel.branch == invite.branch and cancel.headers.get("CSeq") == "1 CANCEL"
    cancel_tx, events = layer.send_request(cancel, UDP, 10.0)
    assert events == [SendMessage(cancel, UDP)]
    layer.receive_response(make_response(cancel, 200, "OK", to_tag="u"), UDP, 10.1)
    timeline = run_until(layer, 100.0)
    assert (42.0, TransactionTimedOut(tx, "INVITE")) in timeline
    assert (15.1, TransactionTerminated(cancel_tx)) in timeline  # Timer K
    assert len(layer) == 0


def test_client_non_invite_timer_e_backs_off_to_t2_until_timer_f() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="u")
    tx, _ = layer.send_request(bye, UDP, 0.0)
    timeline = run_until(layer, 100.0)
    times = [t for t, e in timeline if isinstance(e, SendMessage)]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timeline[-2:] == [
        (32.0, TransactionTimedOut(tx, "BYE")),
        (32.0, TransactionTerminated(tx)),
    ]


def test_client_non_invite_proceeding_retransmits_every_t2() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="u")
    tx, _ = layer.send_request(bye, UDP, 0.0)
    trying = make_response(bye, 100, "Trying")
    assert layer.receive_response(trying, UDP, 0.1) == [ResponseReceived(trying, tx)]
    assert layer.receive_response(trying, UDP, 0.2) == [ResponseReceived(trying, tx)]
    timeline = run_until(layer, 9.0)
    assert [t for t, _ in timeline] == [0.5, 4.5, 8.5]  # first E from Trying, then T2
    ok = make_response(bye, 200, "OK")
    assert layer.receive_response(ok, UDP, 9.0) == [ResponseReceived(ok, tx)]
    assert layer.receive_response(ok, UDP, 9.5) == []  # Completed absorbs
    assert run_until(layer, 100.0) == [(14.0, TransactionTerminated(tx))]  # Timer K = T4


def test_client_non_invite_proceeding_still_times_out_with_timer_f() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="u")
    tx, _ = layer.send_request(bye, UDP, 0.0)
    layer.receive_response(make_response(bye, 100, "Trying"), UDP, 0.1)
    timeline = run_until(layer, 100.0)
    assert timeline[-2:] == [
        (32.0, TransactionTimedOut(tx, "BYE")),
        (32.0, TransactionTerminated(tx)),
    ]


def test_cancel_sent_while_calling_still_bounds_the_wait_after_a_provisional() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    tx, _ = layer.send_request(invite, UDP, 0.0)
    layer.send_request(make_cancel(invite), UDP, 0.2)  # before any provisional
    ringing = make_response(invite, 180, "Ringing", to_tag="u")
    assert layer.receive_response(ringing, UDP, 0.3) == [ResponseReceived(ringing, tx)]
    assert layer.receive_response(ringing, UDP, 0.4) == [ResponseReceived(ringing, tx)]
    timeline = run_until(layer, 100.0)
    assert (32.2, TransactionTimedOut(tx, "INVITE")) in timeline
    assert not any(isinstance(e, SendMessage) and e.message is invite for _, e in timeline)


def test_cancel_for_no_client_invite_is_just_a_request() -> None:
    layer = TransactionLayer()
    cancel = make_cancel(request("INVITE"))
    _, events = layer.send_request(cancel, UDP, 0.0)
    assert events == [SendMessage(cancel, UDP)] and len(layer) == 1


def test_client_invite_2xx_after_provisional() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    tx, _ = layer.send_request(invite, UDP, 0.0)
    layer.receive_response(make_response(invite, 183, "Session Progress", to_tag="u"), UDP, 0)
    ok = make_response(invite, 200, "OK", to_tag="u")
    assert layer.receive_response(ok, UDP, 1.0) == [ResponseReceived(ok, tx)]
    assert run_until(layer, 100.0) == [(33.0, TransactionTerminated(tx))]  # Timer M


def test_client_non_invite_over_tcp() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="u", transport="TCP")
    tx, _ = layer.send_request(bye, TCP, 0.0)
    assert layer.get_timer() == 32.0  # Timer F only
    ok = make_response(bye, 200, "OK")
    assert layer.receive_response(ok, TCP, 1.0) == [
        ResponseReceived(ok, tx),
        TransactionTerminated(tx),
    ]


def test_stray_and_malformed_responses_are_dropped() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="u")
    layer.send_request(bye, UDP, 0.0)
    assert (
        layer.receive_response(make_response(request("BYE", branch="z9hG4bKx"), 200, "OK"), UDP, 0)
        == []
    )
    wrong_method = make_response(bye, 200, "OK")
    wrong_method.headers.set("CSeq", "1 INVITE")
    assert layer.receive_response(wrong_method, UDP, 0.0) == []
    garbled = make_response(bye, 200, "OK")
    garbled.headers.set("CSeq", "nope")
    assert layer.receive_response(garbled, UDP, 0.0) == []
    assert layer.receive_response(make_response(bye, 99, "Odd"), UDP, 0.0) == []


def test_send_request_refuses_what_is_not_a_client_transaction() -> None:
    layer = TransactionLayer()
    with pytest.raises(TransactionStateError, match="ACK is not a transaction"):
        layer.send_request(request("ACK"), UDP, 0.0)
    with pytest.raises(TransactionStateError, match="needs a z9hG4bK branch"):
        layer.send_request(request("BYE", branch="z9hG4bK"), UDP, 0.0)
    layer.send_request(request("BYE"), UDP, 0.0)
    with pytest.raises(TransactionStateError, match="already uses"):
        layer.send_request(request("BYE"), UDP, 0.0)


# -- the tables themselves ------------------------------------------------------------


def test_tables_only_arm_timers_that_live_in_the_target_state() -> None:
    for kind, table in TABLES.items():
        for (state, step), (target, actions) in table.items():
            alive = ALIVE[kind].get(target, frozenset())
            for action in actions:
                if isinstance(action, Arm):
                    assert action.timer in alive, (kind, state, step)
            if isinstance(step, Timer):
                assert step in ALIVE[kind].get(state, frozenset()), (kind, state, step)
        start, actions = INITIAL[kind]
        assert all(
            a.timer in ALIVE[kind].get(start, frozenset()) for a in actions if isinstance(a, Arm)
        )


def test_every_state_of_every_machine_ends_in_terminated() -> None:
    for kind, table in TABLES.items():
        states = {state for state, _ in table} | {INITIAL[kind][0]}
        reachable = {INITIAL[kind][0]}
        frontier = [INITIAL[kind][0]]
        while frontier:
            state = frontier.pop()
            for (source, _), (target, _) in table.items():
                if source is state and target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        assert reachable == states | {State.TERMINATED}, kind


def test_server_tables_accept_tu_responses_only_before_a_final() -> None:
    assert (State.COMPLETED, Input.TU_FINAL) not in TABLES[Kind.INVITE_SERVER]
    assert (State.ACCEPTED, Input.TU_2XX) in TABLES[Kind.INVITE_SERVER]
    assert (State.COMPLETED, Input.TU_1XX) not in TABLES[Kind.NON_INVITE_SERVER]


def test_heap_of_cancelled_timers_stays_bounded() -> None:
    layer = TransactionLayer()
    _, live = new_invite_tx(layer)  # one transaction keeps a timer through it all
    layer.send_response(live, make_response(request("INVITE"), 486, "Busy", to_tag="t"), 0.0)
    for n in range(3000):
        invite = request("INVITE", branch=f"z9hG4bKn{n}", call_id=f"c{n}")
        tx = layer.receive_request(invite, TCP, 0.0)[1].transaction_id  # type: ignore[union-attr]
        busy = make_response(invite, 486, "Busy Here", to_tag="t")
        layer.send_response(tx, busy, 0.0)  # arms Timer H
        layer.receive_request(ack_for(invite, busy), TCP, 0.0)  # cancels it, ends the tx
    assert len(layer) == 1
    assert len(layer._heap) <= 1024 + 8
    assert layer.get_timer() == 0.5  # the live transaction's Timer G survived compaction


# -- property: whatever the peer does, every transaction ends -------------------------

_REMOTE = st.sampled_from(["invite", "invite_again", "ack", "cancel", "options", "bye_reply"])
_LOCAL = st.sampled_from([100, 180, 200, 404, 487])


@settings(max_examples=150, deadline=None)
@given(
    script=st.lists(st.tuples(st.one_of(_REMOTE, _LOCAL), st.floats(0, 3)), max_size=25),
    reliable=st.booleans(),
)
def test_random_traffic_never_leaks_transactions(
    script: list[tuple[str | int, float]], reliable: bool
) -> None:
    layer = TransactionLayer()
    peer = TCP if reliable else UDP
    now = 0.0
    server_ids: list[str] = []
    invite = request("INVITE")
    bye_id, _ = layer.send_request(request("BYE", branch="z9hG4bKbye", to_tag="u"), peer, now)
    for item, delay in script:
        now += delay
        layer.handle_timer(now)
        if isinstance(item, int):
            for tx in server_ids:
                # A final after a final, or a terminated transaction, is refused.
                with contextlib.suppress(TransactionStateError):
                    layer.send_response(tx, make_response(invite, item, "x", to_tag="t"), now)
            continue
        message = {
            "invite": invite,
            "invite_again": invite,
            "ack": ack_for(invite, make_response(invite, 404, "x", to_tag="t")),
            "cancel": request("CANCEL"),
            "options": request("OPTIONS", branch="z9hG4bKopt"),
        }.get(item)
        if message is None:
            layer.receive_response(
                make_response(request("BYE", branch="z9hG4bKbye"), 200, "OK"), peer, now
            )
            continue
        for event in layer.receive_request(message, peer, now):
            if isinstance(event, RequestReceived):
                server_ids.append(event.transaction_id)
    for tx in server_ids:  # the TU answers whatever is still open
        with contextlib.suppress(TransactionStateError):
            layer.send_response(tx, make_response(invite, 500, "x", to_tag="t"), now)
    run_until(layer, now + 1000.0)
    assert len(layer) == 0 and layer.get_timer() is None
    assert bye_id


def test_a_second_2xx_for_the_same_dialog_key_keeps_its_ack_match() -> None:
    # The same INVITE reaching us over two paths (RFC 3261 8.2.2.2 merged requests)
    # is two transactions; if both got a 2xx with one tag, the first one ending must
    # not make the ACK for the second unmatched.
    layer = TransactionLayer()
    first, tx1 = new_invite_tx(layer)
    layer.send_response(tx1, make_response(first, 200, "OK", to_tag="t"), 0.0)
    second = request("INVITE", branch="z9hG4bKpath2", sent_by="198.51.100.7:5060")
    tx2 = layer.receive_request(second, UDP, 10.0)[1].transaction_id  # type: ignore[union-attr]
    ok2 = make_response(second, 200, "OK", to_tag="t")
    layer.send_response(tx2, ok2, 10.0)
    assert (32.0, AckTimedOut(tx1, first)) in run_until(layer, 33.0)
    ack = ack_for(second, ok2, branch="z9hG4bKack2")
    assert layer.receive_request(ack, UDP, 33.0) == [AckReceived(ack, UDP)]
    assert not any(isinstance(e, AckTimedOut) for _, e in run_until(layer, 100.0))
