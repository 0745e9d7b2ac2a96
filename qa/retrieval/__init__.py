"""Ranking passages for a question: dense, BM25, fusion, quotes and abstention."""
