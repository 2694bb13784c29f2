"""What a run leaves for people: its log (log_history.json, TensorBoard, train.log) and the one
reader of that log (history), the model card, the curves, the hyperparameter lists, the tables
of `ner-report`, the bootstrap intervals of `ner-evaluate --bootstrap` and of a run's test
scores, and the error analysis of `ner-evaluate --errors` and of the card (outcome).

Everything here reads what the loop recorded; nothing here decides what the loop computes.
"""
