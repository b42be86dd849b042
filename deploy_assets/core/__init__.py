"""Pure Python, Arrow, NumPy and scikit-learn: no Dagster. Shared by the batch assets and the online services."""
