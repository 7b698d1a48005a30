"""The layout of an aggregator's state and records, shared by the kernels and the Python side
(pure Python: importing it does not import Numba). See `storey.kernels.buckets`."""

# ---- record fields (offsets within an aggregator's record in cfg)
R_STATS = 0  # bit mask of the base statistics kept (see registry)
R_PERIOD = 1  # bucket length (ns)
R_N = 2  # ring size (buckets)
R_NW = 3  # number of windows
R_OFF = 4  # offset of the aggregator's block in a row of `state` (floats)
R_OUT = 5  # output row of its first feature
R_NA = 6  # number of aggregations
R_CAP = 7  # 1 when max_value caps the values
R_CAP_INT = 8  # 1 when max_value is an int
R_VALUE = 9  # row of its values in `values` / `valid`
R_MODE = 10  # fixed windows: 0 aligned, 1 windows precalculated as the reference does
R_UNIT = 11  # fixed windows: unit of the smallest window (ns)
R_WMAX = 12  # largest window (ns)
R_RINGS = 13  # 9 offsets of the statistics in a row: ring start + place in a bucket (-1: not kept)
R_WOFF = 22  # absolute offset of the first window block in a row
R_STRIDE = 23  # floats per bucket (the statistics kept)
R_IOFF = 24  # offset of the aggregator's block in a row of `istate` (int64s)
R_KIND = 25  # KIND_SLIDING or KIND_FIXED
R_WIN = 26  # window lengths in buckets (R_NW of them), then aggregation codes (R_NA of them)

KIND_SLIDING = 0
KIND_FIXED = 1

# statistics of a bucket, in the order of R_RINGS
K_CNT = 0
K_SUM = 1
K_SQR = 2
K_MIN = 3
K_MAX = 4
K_FOFF = 5
K_FVAL = 6
K_LOFF = 7
K_LVAL = 8
N_RINGS = 9

# window block fields
W_CNT = 0
W_SUM = 1
W_SQR = 2
W_MIN = 3
W_MAX = 4
W_FB = 5
W_LO = 6  # fixed windows: first bucket of the window's current range
W_END = 7  # fixed windows: first bucket after the current range; sliding windows: a scratch flag
W_SIZE = 8

# int64 block: header, then a bitmap of the ring slots that hold a bucket
HEADER = 7
H_B = 0  # latest bucket of the key (NO_STATE before its first value)
H_OFF = 1  # offset (ns) of the latest time in its bucket
H_FIRST = 2  # first bucket the key ever had
H_J = 3  # ring slot of the latest bucket (H_B modulo the ring size)
# where the reference reads the windows for an emitted event without a value (followed only
# when some events are not emitted, see the kernels): NO_STATE as they stand (at the latest
# bucket), DIRTY at the event's own bucket (the windows moved on while no event was emitted),
# else at this bucket (where such a read moved them)
H_READ = 4
# sliding windows: the bucket the reference's windows count from, the key's first event (with or
# without a value; max_value windows start there too)
H_BORN = 5
# sliding windows with min/max/first/last: where the reference last moved them
H_MOVED = 6
NO_STATE = -(2**63)
DIRTY = NO_STATE + 1

ABSENT = 1
INT = 2

# read modes
MODE_AGG = 0  # an AggregateByKey event without a value: the windows at min(its time, latest time)
MODE_QUERY = 1  # QueryByKey: the windows at the query time
MODE_LAST_CLOSED = 2  # QueryByKey, fixed windows: the window before the one holding the query time
