"""Labels of the sample browser, search and statistics pages."""

MESSAGES: dict[str, dict[str, str]] = {}
