"""The message catalogue, one module per area of the UI (merged in app.core.i18n)."""
