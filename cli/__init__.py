"""Command-line entry points: ``ochuman`` (dataset, evaluation) and ``pose2seg`` (model)."""
