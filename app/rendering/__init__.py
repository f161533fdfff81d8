"""Untrusted text made safe to show: markdown with math, and word diffs."""
