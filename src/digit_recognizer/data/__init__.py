"""Getting the competition: download (Kaggle, a zip or folder, the embedded sample), CSV checks, prepared arrays and folds."""
