"""GrowingRows: 2-D arrays that grow by rows, keeping what they hold."""

import numpy as np
import pytest

import storey.table.row_arrays as row_arrays
from storey.table.row_arrays import GrowingRows


def _kernel_ready(array):
    # the one array type the kernels are compiled for
    flags = array.flags
    return flags.c_contiguous and flags.writeable and flags.aligned


@pytest.mark.parametrize("dtype, fill", [(np.float64, 0.0), (np.int64, -(2**63))])
def test_rows_keep_their_values_and_new_rows_hold_the_fill(dtype, fill):
    rows = GrowingRows(4, 3, dtype, fill)
    assert rows.array.shape == (4, 3) and (rows.array == fill).all()
    rows.array[:] = np.arange(12).reshape(4, 3)
    # past the size where rows move into a reserved mapping, and on within it
    for n in (10, 300_000, 400_000):
        rows.grow(n)
        array = rows.array
        assert array.shape == (n, 3) and array.dtype == dtype and _kernel_ready(array)
        assert (array[:4] == np.arange(12).reshape(4, 3)).all()
        assert (array[4:] == fill).all()
        array[n - 1] = 7
        assert (rows.array[n - 1] == 7).all()
        array[n - 1] = fill


def test_a_grown_array_shares_the_memory_of_the_mapping():
    rows = GrowingRows(1, 1024, np.float64, 0.0)
    rows.grow(1024)  # 8 MB: mapped
    rows.array[5, 5] = 3.0
    before = rows.array
    rows.grow(2048)
    assert np.shares_memory(before, rows.array) and rows.array[5, 5] == 3.0


def test_rows_past_the_reservation_are_copied_into_a_larger_one(monkeypatch):
    monkeypatch.setattr(row_arrays, "_RESERVE", 1 << 20)
    monkeypatch.setattr(row_arrays, "_MAPPED_FROM", 1 << 16)
    rows = GrowingRows(2, 16, np.int64, -1)
    rows.array[1] = 9
    sizes = (100, 1_000, 10_000, 100_000)
    for n in sizes:
        rows.grow(n)
        assert rows.array.shape == (n, 16) and _kernel_ready(rows.array)
        assert (rows.array[1] == 9).all() and (rows.array[0] == -1).all() and (rows.array[2:] == -1).all()


def test_growing_to_fewer_rows_changes_nothing():
    rows = GrowingRows(8, 2, np.float64, 1.5)
    array = rows.array
    rows.grow(3)
    assert rows.array is array
