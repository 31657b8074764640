"""The Litestar HTTP service. Thin: it validates, calls :mod:`forecasting`, maps errors to HTTP."""
