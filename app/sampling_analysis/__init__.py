"""Pure analysis of sampling results: scorers, accuracy, length/cut/repeat stats, identity flags, latency.

Everything here works on plain dicts and lists so the results page, the worker and the tests call the
same functions without a database. A generation is a dict with the keys the sampling job stores:
`prompt_id`, `task_type`, `reference` (str or None), `k`, `n`, `text`, `tokens`, `prompt_tokens`,
`finish_reason` ("stop"/"length"), `ttft_s`, `tpot_s`, `time_s`. Functions read only the keys they
name in their docstring, so a caller can pass partial dicts.
"""
