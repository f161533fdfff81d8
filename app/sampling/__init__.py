"""Sampling jobs: a model answers a dataset version's prompts (issue 12). Plain functions; routes stay thin."""
