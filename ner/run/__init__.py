"""The machinery a run needs and a researcher rarely reads.

The command line and Hydra's entry point (cli), the run directory, its name and where a run
starts in it (rundir, stamp, start, layout), its one owner (lock), stopping on a signal
(preemption), and what refuses a run before any work: the command line (precheck), the config
rules (checks), what the run reads (inputs). It uses the research core (ner/); the core never
imports it.
"""
