"""Sans-IO SIPREC (RFC 7865, RFC 7866): recording metadata and what an SRC's request holds.

``metadata`` is the model of an rs-metadata body and ``parse_metadata`` reads one
(defused and bounded by ``xmlsafety``); ``merge`` applies partial updates; ``offer``
picks the SDP and the metadata out of a SIPREC INVITE, re-INVITE or UPDATE body.
"""

from callvault.siprec.metadata import (
    NS_DRAFT,
    NS_LEGACY,
    NS_RFC7865,
    BroadWorksInfo,
    ExtensionData,
    MetadataParticipant,
    MetadataStream,
    RecordingMetadata,
    merge,
    parse_metadata,
)
from callvault.siprec.offer import OfferError, SiprecOffer, read_offer
from callvault.siprec.xmlsafety import MetadataError

__all__ = [
    "NS_DRAFT",
    "NS_LEGACY",
    "NS_RFC7865",
    "BroadWorksInfo",
    "ExtensionData",
    "MetadataError",
    "MetadataParticipant",
    "MetadataStream",
    "OfferError",
    "RecordingMetadata",
    "SiprecOffer",
    "merge",
    "parse_metadata",
    "read_offer",
]
