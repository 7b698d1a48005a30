"""Recover: sends the events whose processing raised to a step chosen by exception type."""

__all__ = []
