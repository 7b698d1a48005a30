"""JoinWithTable: joins events with the attributes a Table holds for their key."""

__all__ = []
