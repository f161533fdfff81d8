"""The LLM judge connected to rating tasks: plain functions between app.judge (the library) and the tables.

`configs` (judge configurations, their rater accounts, keys and prompt versions), `cases` (a case's
judge prompts, in both orders for pairwise), `record` (a reply -> a Rating under the judge's account, or
a failure with its reason), `jobs` (launch, cancel, resume, what a job's page shows, position
consistency). The worker's `judge` kind (worker/kinds/judge.py) calls these case by case.
"""
