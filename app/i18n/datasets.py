"""Labels of uploads, mapping, import reports, dataset and version pages."""

MESSAGES: dict[str, dict[str, str]] = {}
