"""Serving the trained ensemble: picture preprocessing, the predictor over every fold model, the web page and API."""
