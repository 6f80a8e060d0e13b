"""Ingest pipeline: scan, decode, segment, embed, tag, store."""
