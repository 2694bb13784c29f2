"""The machinery a run needs and a researcher rarely reads.

The command line and Hydra's entry point (cli), the run directory and where a run starts in it
(rundir, resumable, layout), its one owner (lock), stopping on a signal (preemption), and the
checks that refuse a config before any work (checks). It uses the research core (ner/); the
core never imports it.
"""
