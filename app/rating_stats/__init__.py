"""The numbers of rating, as pure functions over plain data: no database, so pages call them directly.

Where things are: `scales` (binary, 1-5, 1-10 and normalising a score to [0, 1]), `rubric` (the
`Rubric`/`Dimension` dataclasses, validated from and written to JSON), `usability` (a case's scores,
adjudicated or averaged, and the weighted formula with its threshold), `matrix` (rating rows to a
raters x cases matrix), `agreement` (Krippendorff's alpha, quadratic kappa, pairwise percent agreement
and the human ceilings to read them against), `intervals` (bootstrap intervals over cases,
win/tie/loss, task_type grouping at level 1 and 2), `quality` (disputed cases, accuracy against gold).
`bench/rating_stats.py` times alpha and the bootstrap at 20 raters x 5,000 cases.
"""
