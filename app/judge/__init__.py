"""The LLM judge as a library: prompts, reply parsing, pairwise combination, endpoint client, keys.

Nothing here touches the database: the rating models store what these functions return (the rendered
prompt with its template version, the parsed scores, the encrypted key), and the worker calls them
case by case. Where things are: `dimensions` (AlignBench's dimension sets, task_type -> set),
`templates` (editable `{{name}}` prompts, versioned by hash), `prompts` (the default English and
Chinese prompts, rendering), `parse` (reply -> scores or JudgeParseError), `pairwise` (both orders ->
one outcome, position consistency), `client` (OpenAI-compatible chat completions), `keys` (endpoint
keys encrypted at rest).
"""
