"""A realistic sample event history: card transactions of many users over some days.

Users are not equally active (a few make many payments, most make few), payments follow the
time of day, amounts are skewed (many small, few large), and events come in time order, as a
service would have logged them. The same seed gives the same events.
"""

import numpy as np
import pyarrow as pa

START = np.datetime64("2024-03-01T00:00:00", "us")
CATEGORIES = np.array(
    ["grocery", "restaurant", "fuel", "travel", "online", "pharmacy", "electronics", "clothing"],
    dtype=object,
)
_CATEGORY_WEIGHTS = np.array([0.3, 0.2, 0.1, 0.03, 0.2, 0.07, 0.04, 0.06])
# relative activity per hour of the day (UTC)
_HOURLY = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        2.5,
        3.5,
        4,
        4.2,
        4.5,
        5,
        4.8,
        4.4,
        4.2,
        4.4,
        5,
        5.5,
        5.2,
        4.5,
        3.5,
        2.5,
        1.6,
    ]
)
KEY = "user_id"
TIME = "timestamp"
NUMERIC_COLUMNS = ("amount", "online")
DEFAULT_FEATURES = "amount:count,sum,avg,max@1h,24h/10m;today=amount:count,sum@fixed:1d"


def user_names(n_keys):
    width = len(str(max(n_keys - 1, 0)))
    return np.array([f"user_{i:0{width}d}" for i in range(n_keys)], dtype=object)


def generate_events(n_events, n_keys, days=30, seed=0):
    """A pyarrow Table of `n_events` card transactions by `n_keys` users over `days` days.

    Columns: user_id (string), timestamp (UTC, microseconds, ascending), amount (float64),
    category (string), online (bool).
    """
    if n_events < 0 or n_keys < 1 or days < 1:
        raise ValueError(f"need events >= 0, keys >= 1 and days >= 1, got {n_events}, {n_keys}, {days}")
    rng = np.random.default_rng(seed)
    # Zipf-like activity: user i is about 1/(i+10) as active as the most active one
    activity = 1.0 / (np.arange(n_keys) + 10.0)
    users = rng.choice(n_keys, size=n_events, p=activity / activity.sum())
    rng.shuffle(users)  # spread the active users over the whole history

    day = rng.integers(0, days, size=n_events)
    hour = rng.choice(24, size=n_events, p=_HOURLY / _HOURLY.sum())
    micros_in_hour = rng.integers(0, 3_600_000_000, size=n_events)
    offsets = (day * 24 + hour) * 3_600_000_000 + micros_in_hour
    offsets.sort()
    times = START + offsets.astype("timedelta64[us]")

    # each user has a typical payment size; each payment varies around it
    typical = rng.lognormal(mean=3.0, sigma=0.7, size=n_keys)
    amount = np.round(typical[users] * rng.lognormal(mean=0.0, sigma=0.9, size=n_events), 2)
    category = rng.choice(len(CATEGORIES), size=n_events, p=_CATEGORY_WEIGHTS)
    online = (category == 4) | (rng.random(n_events) < 0.1)

    names = user_names(n_keys)
    return pa.table(
        {
            KEY: pa.DictionaryArray.from_arrays(pa.array(users, pa.int32()), pa.array(names)).cast(
                pa.string()
            ),
            TIME: pa.array(times, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64()),
            "category": pa.DictionaryArray.from_arrays(
                pa.array(category, pa.int32()), pa.array(CATEGORIES)
            ).cast(pa.string()),
            "online": pa.array(online, pa.bool_()),
        }
    )


def write_events(table, path):
    """Writes the events to `path`: Parquet, or CSV when the path ends in .csv."""
    if str(path).lower().endswith(".csv"):
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path, row_group_size=256 * 1024)
