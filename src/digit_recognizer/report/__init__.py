"""Looking at results: the report's plots, the scores table and the row-by-row comparison of two runs."""
