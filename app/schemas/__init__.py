"""Bodies of the JSON API, one module per area.

Routes name the response bodies as `response_model`, so /api/openapi.json
documents every answer and nothing undeclared leaves by accident. Each model
describes what the route already returned: a key added to a route's dict must be
added here too, or the response drops it.
"""
