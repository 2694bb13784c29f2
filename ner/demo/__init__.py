"""The generated demo languages: Hebrew-like and Arabic-like sentences with WikiANN's tags, made
from word lists and templates (generate), so that the demo and the tests need no download.
"""
