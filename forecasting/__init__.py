"""forecasting: time-series and tabular forecasting with explanations, in one place.

The library is organised in layers (see ``ARCHITECTURE.md``): :mod:`forecasting.data`
validates long-format panels, :mod:`forecasting.models` holds the zoo behind one
protocol, :mod:`forecasting.evaluation` scores forecasts with the M4 definitions,
:mod:`forecasting.datasets` loads the catalogue, :mod:`forecasting.service` is the
one forecasting entry point the CLI and the API share.
"""

__version__ = "0.1.0"
