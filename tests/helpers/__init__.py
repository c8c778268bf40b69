"""Helpers shared by the tests: running train.py, tiny language models and data sets, hand-built run dirs."""
