"""A tiny Hydra app for the launcher tests: a two-process gloo all-reduce, no model."""
