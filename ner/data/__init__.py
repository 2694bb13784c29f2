"""A run's data, from source to checked sentences.

sources: read one source's splits (WikiANN by hub name or local directory, local files, the
demo); files: the JSON-lines and CoNLL readers; sentences: a sentence and where it came from;
checks: what every sentence must satisfy (tags, IOB2, lengths), with its place in any error;
corpus: what a run trains and evaluates on (several languages, named evaluation sets).
"""
