"""The public `storey.transformations` namespace: every step that transforms events."""

from ..steps import Extend, Filter, FlatMap, Flatten, ForEach, Map, MapClass

__all__ = ["Extend", "Filter", "FlatMap", "Flatten", "ForEach", "Map", "MapClass"]
