"""The commands that use a trained run: `ner-evaluate` (evaluate), `ner-predict` (predict, with
the word splitter of raw text, words), `ner-report` (report), and what they share: loading a
trained model from a run directory, a checkpoint or an exported directory (trained).
"""
