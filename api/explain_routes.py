"""``POST /v1/explain``: explain a forecast of inline series (the same shape as the registered route).

A thin route: one call to :func:`forecasting.service.explain` and the mapping of
:func:`forecasting.api.mapping.explain_out`. Trees answer exact TreeSHAP (or, with
``approximate``, Saabas path attributions named as such), networks integrated gradients,
statistical models the labelled decomposition of each forecast step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from litestar import post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from forecasting import service
from forecasting.api.mapping import explain_out
from forecasting.api.schemas import ExplainResponse, InlineExplainRequest
from forecasting.service.core import Limits
from forecasting.service.registered import select_rows

__all__ = ["explain_routes"]


def explain_routes(limits: Limits, problems: Mapping[int, Any], before: Callable[..., Any]) -> list[HTTPRouteHandler]:
    """The inline explain route, with the service's limits, problem responses and JSON check."""

    @post("/v1/explain", tags=["forecast"], summary="Explain a forecast of inline series", status_code=200,
          sync_to_thread=True, before_request=before, responses=dict(problems))
    def explain_inline(data: JSONBody[InlineExplainRequest]) -> ExplainResponse:
        """Fit the model on `data` and explain each of its `h` forecast steps: per row its base value (one per
        global model), output and top-`k` contributions (features and named series terms, in units of y, the
        model's transformed value beside), and the additivity error relative to the contributions' scale."""
        result = service.explain(data.data, model=data.model, h=data.h, freq=data.freq, X_future=data.X_future,
                                 fill_missing=data.fill_missing, fill_gaps=data.fill_gaps, limits=limits,
                                 approximate=data.approximate)
        if data.series is not None or data.steps is not None:
            result = type(result)(explanation=select_rows(result.explanation, series=data.series, steps=data.steps),
                                  model=result.model, notes=result.notes)
        return explain_out(result, k=data.k, h=data.h)

    return [explain_inline]
