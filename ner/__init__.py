"""ner: fine-tune XLM-RoBERTa for named-entity recognition with a hand-written DDP loop."""

LABELS_WIKIANN = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
