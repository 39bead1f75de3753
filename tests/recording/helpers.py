"""Building recording sessions from corpus messages, for recording-layer tests."""

from __future__ import annotations

from callvault.recording.correlation import call_keys
from callvault.recording.store import NewSegment
from callvault.sdp.answer import choose_streams
from callvault.sip.events import Peer
from callvault.sip.message import Request, parse_message
from callvault.siprec.offer import read_offer
from tests.corpus import SIPREC_CORPUS

PEER = Peer("udp", "192.0.2.10", 5060)


def corpus_request(name: str) -> Request:
    message = parse_message((SIPREC_CORPUS / name).read_bytes())
    assert isinstance(message, Request)
    return message


def new_segment(
    name: str, *, started_at: float = 1_700_000_000.0, first_port: int = 30000
) -> NewSegment:
    request = corpus_request(name)
    offer = read_offer(request.headers.get("Content-Type") or "", request.body)
    assert offer.sdp is not None
    choices = [c for c in choose_streams(offer.sdp) if c is not None]
    return NewSegment(
        request=request,
        peer=PEER,
        offer=offer,
        keys=call_keys(request, offer.metadata),
        started_at=started_at,
        capture_path=f"captures/{name}.pcap",
        local_tag="srs-tag",
        streams=[(c.index, c, first_port + 2 * n) for n, c in enumerate(choices)],
    )
