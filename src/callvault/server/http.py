"""The operator's HTTP routes of ``callvault serve``: health, readiness and Prometheus
metrics, for load balancers and monitoring (no login). The web app
(``callvault.web.app``) mounts them beside the pages and the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    detail: dict[str, object]


def health_router(
    readiness: Callable[[], Readiness],
    gauges: Callable[[], dict[str, float]],
) -> APIRouter:
    app = APIRouter(tags=["operations"])
    registry = CollectorRegistry()
    metric: dict[str, Gauge] = {}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up and its event loop answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready to take new recording sessions (disk has room, database reachable)."""
        state = readiness()
        return JSONResponse(
            {"ready": state.ready, **state.detail}, status_code=200 if state.ready else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format: live sessions, packets, ports in use, jobs."""
        for name, value in gauges().items():
            if name not in metric:
                metric[name] = Gauge(name, name.replace("_", " "), registry=registry)
            metric[name].set(value)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
