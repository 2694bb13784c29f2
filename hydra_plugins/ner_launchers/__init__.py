"""Hydra plugins of the ner project, found by Hydra through the `hydra_plugins` namespace package.

`torchrun_launcher` registers `hydra/launcher=torchrun`: each job of a sweep runs as its own
torchrun command (see that module's docstring).
"""
