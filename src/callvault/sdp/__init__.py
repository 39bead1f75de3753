"""Sans-IO SDP (RFC 8866) and offer/answer (RFC 3264) for a Session Recording Server.

``session`` parses and writes SDP bodies, ``codecs`` holds the RFC 3551 static payload
table and the codec choice, ``crypto`` the SDES ``a=crypto`` attribute (RFC 4568) and
``answer`` builds the SRS's answer (or offer). One error type: ``SdpError`` with the SIP
status to answer (400 unparseable, 488 unusable).
"""

from callvault.sdp.answer import (
    StreamChoice,
    build_answer,
    build_offer,
    choose_streams,
    require_usable,
)
from callvault.sdp.codecs import STATIC_PAYLOAD_TYPES, Codec, CodecChoice, choose_codec
from callvault.sdp.crypto import CryptoAttribute, KeyParam
from callvault.sdp.errors import SdpError
from callvault.sdp.session import Connection, MediaDescription, Origin, SessionDescription

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Codec",
    "CodecChoice",
    "Connection",
    "CryptoAttribute",
    "KeyParam",
    "MediaDescription",
    "Origin",
    "SdpError",
    "SessionDescription",
    "StreamChoice",
    "build_answer",
    "build_offer",
    "choose_codec",
    "choose_streams",
    "require_usable",
]
