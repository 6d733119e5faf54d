"""Kaggle: the API client (download, submit), validated submissions."""
