"""A month's steps as plain functions, with no Dagster import: ingest, train, promotion decision, score, publish.

Each step takes the deployment's objects (its landing zone, registered model, stores, thresholds) and a month, does
the work and returns what it found: the metadata and content version of what it wrote and its checks' findings.
A step that cannot go on raises `StepFailure` (bad input: the message says what to fix); anything else it raises
is the caller's to classify. The Dagster assets are thin wrappers around these functions (they add the instance's
history, events and check evaluations), and `bench/` times the same functions as "the same work without Dagster".
"""
