"""Helpers the tests share: conformance cases, flows run over batches and events, replays."""
