"""A rating task's results, read from the database and handed to the pure statistics of app.rating_stats.

`data` (one task's cases, ratings, gold and adjudications, and the rubric version to score them under),
`summary` (usability and dimensions per task_type, pairwise win/tie/loss), `agreement` (alpha, kappa,
pairwise agreement per dimension and task_type), `review` (disputed cases and raters against gold),
`export` (CSV per case, JSONL per rating), `adjudication` (the researcher's settled scores for a case).
`results` puts the sections together for the page and its API.
"""
