"""Tests of the rater pages, the safe renderer and the word diff."""
