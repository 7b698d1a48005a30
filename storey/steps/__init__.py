"""Steps of a flow, one idea per module."""

from .functions import Extend, Filter, FlatMap, Flatten, ForEach, Map, MapClass

__all__ = ["Extend", "Filter", "FlatMap", "Flatten", "ForEach", "Map", "MapClass"]
