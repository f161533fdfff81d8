"""Human rating: rubrics, rating tasks from sampling jobs, the assignment of cases to raters, their answers.

`rubrics` (versions, the 3H default), `tasks` (creating a task and its cases), `assign` (claims
held by database constraints, skip, undo, abandoned cases), `answers` (the blind CaseView and the left/right
to A/B translation), `queue` (a rater's tasks and history), `overview` (what the researcher sees).
"""
