"""Driver: the base class of table storage drivers (see `storey.drivers` for the contract)."""

__all__ = ["Driver"]


class Driver:
    """Abstract class for database connection.

    Subclasses implement the batch hooks below. A driver whose hooks wait on I/O keeps
    `_may_suspend = True`: the steps using its tables then run their flow on its event loop.
    """

    _may_suspend = True
    # False for drivers that keep nothing, so that tables need not track what to save
    _persists = True

    async def _load_static(self, table, keys):
        """The stored static attributes of each of `keys`: a dict key -> dict of attributes;
        keys that have none stored are left out."""
        return {}

    async def _save_static(self, table, changes):
        """Saves static attributes: `changes` maps each key to `(attributes_to_set, names_to_remove)`."""

    async def close(self):
        """Closes the connection, if any."""

    async def _end_flow(self):
        """Called when a flow using the driver terminates: releases what belongs to its event loop."""
