"""The sample event history of `storey demo` and `storey sample`."""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from storey.cli.sample_data import KEY, TIME, generate_events, write_events


def test_columns_and_types():
    table = generate_events(1000, 50, days=3, seed=1)
    assert table.num_rows == 1000
    assert table.schema == pa.schema(
        [
            (KEY, pa.string()),
            (TIME, pa.timestamp("us", tz="UTC")),
            ("amount", pa.float64()),
            ("category", pa.string()),
            ("online", pa.bool_()),
        ]
    )


def test_events_in_time_order_within_the_days():
    table = generate_events(5000, 20, days=2, seed=2)
    times = table.column(TIME).to_numpy().astype("datetime64[us]").astype(np.int64)
    assert (np.diff(times) >= 0).all()
    assert times[-1] - times[0] < 2 * 86_400_000_000


def test_users_are_unequally_active():
    table = generate_events(100_000, 1000, seed=3)
    counts = np.sort(table.column(KEY).to_pandas().value_counts().to_numpy())[::-1]
    assert len(counts) > 900
    assert counts[0] > 20 * counts[-1]


def test_amounts_are_positive_cents():
    amount = generate_events(2000, 10, seed=4).column("amount").to_numpy()
    assert (amount >= 0).all()
    assert np.allclose(amount * 100, np.round(amount * 100))


def test_same_seed_same_events():
    assert generate_events(500, 7, seed=5).equals(generate_events(500, 7, seed=5))
    assert not generate_events(500, 7, seed=5).equals(generate_events(500, 7, seed=6))


@pytest.mark.parametrize(("n", "keys", "days"), [(-1, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_bad_sizes(n, keys, days):
    with pytest.raises(ValueError, match="need events"):
        generate_events(n, keys, days)


def test_written_as_parquet_or_csv(tmp_path):
    table = generate_events(300, 5, seed=7)
    write_events(table, str(tmp_path / "e.parquet"))
    write_events(table, str(tmp_path / "e.csv"))
    assert pq.read_table(str(tmp_path / "e.parquet")).equals(table)
    back = pacsv.read_csv(str(tmp_path / "e.csv"))
    assert back.column_names == table.column_names
    assert back.column("amount").to_pylist() == table.column("amount").to_pylist()
