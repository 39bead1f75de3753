"""Sans-IO SIP (RFC 3261): messages, URIs, transactions and dialogs.

Nothing in this package touches a socket or a clock: callers pass bytes and ``now``
and get back events and bytes to send (see ``callvault.server`` for the asyncio side).
"""
