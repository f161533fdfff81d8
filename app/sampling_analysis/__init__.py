"""Pure analysis of sampling results: scorers, accuracy, length/cut/repeat stats, identity flags, latency.

Everything here works on plain dicts and lists so the results page, the worker and the tests call the
same functions without a database. A generation is a dict with the keys the sampling job stores:
`prompt_id`, `task_type`, `reference` (str or None), `k`, `n`, `text`, `tokens`, `prompt_tokens`,
`finish_reason` ("stop"/"length"), `ttft_s`, `tpot_s`, `time_s`. Functions read only the keys they
name in their docstring, so a caller can pass partial dicts.

Where things are: `scorers` (exact/regex/choice/numeric scorers, `score`, `infer_task_spec`,
`score_generations`), `choice` (label extraction), `numerals` (last number), `normalize` (what "the
same answer" means), `accuracy` (Wilson interval, accuracy per task_type, pass@k), `stats` (lengths,
cut share, repeated and distinct answers), `flags` (identity claims and mentions), `latency` (time =
k·tokens + b per prompt-length band). `bench/sampling_analysis.py` times them at 100,000 generations.
"""
