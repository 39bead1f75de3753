"""The web app and REST API: find, play and share recordings, with the right permissions.

- ``app``: the FastAPI application ``callvault serve`` mounts on ``--http``.
- ``errors``: one error hierarchy, rendered as RFC 9457 problem details under
  ``/api`` and as HTML pages elsewhere.
- ``auth``: passwords (argon2), server-side sessions, CSRF, login throttling, API
  tokens. ``principal``: who is asking, as FastAPI dependencies.
- ``permissions``: the one module that decides who may see which call and recording.
- ``api/`` (REST under ``/api/v1``) and ``pages/`` (server-rendered HTML) ask it.
"""
