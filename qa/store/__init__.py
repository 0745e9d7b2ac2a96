"""Persistence of a built index: vectors, passages, BM25 and the manifest."""
