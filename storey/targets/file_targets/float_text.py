"""Floats as Python's `repr()` writes them, a whole column at once, compiled with Numba.

`repr()` writes the shortest digits that read back as the same float (the closest such digits
when several are as short), in positional form ('0.0001', '123.5') when the decimal point falls
within 16 digits of the first, else with an exponent ('1e-05', '1.5e+16'), and adds '.0' to a
whole number. The digits come from the Ryu algorithm (Ulf Adams, 2018), which finds exactly
those digits with 128-bit integer arithmetic and two tables of powers of 5. The kernel is a
plain loop writing the UTF-8 text and the offsets of an arrow string array (twice as fast as
arrow's own cast, whose layout differs from repr's anyway).

This module imports Numba: import it where floats are written.
"""

import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_POW5_INV_BITCOUNT = 125
_POW5_BITCOUNT = 125
_MASK64 = (1 << 64) - 1
# the most bytes one value takes: '-' + 17 digits + '.' + 'e-324' and some
_MAX_CHARS = 25


def _tables():
    """DOUBLE_POW5_INV_SPLIT and DOUBLE_POW5_SPLIT of Ryu as (n, 2) uint64 arrays (low, high)."""
    inverse = np.zeros((342, 2), dtype=np.uint64)
    for i in range(342):
        pow5 = 5**i
        j = pow5.bit_length() - 1 + _POW5_INV_BITCOUNT
        value = (1 << j) // pow5 + 1
        inverse[i] = (value & _MASK64, value >> 64)
    split = np.zeros((326, 2), dtype=np.uint64)
    for i in range(326):
        pow5 = 5**i
        length = pow5.bit_length()
        value = (
            pow5 >> (length - _POW5_BITCOUNT)
            if length >= _POW5_BITCOUNT
            else pow5 << (_POW5_BITCOUNT - length)
        )
        split[i] = (value & _MASK64, value >> 64)
    return inverse, split


def float_texts(values):
    """The repr() texts of a float64 array, as an arrow string array."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    n = len(values)
    data = np.empty(n * _MAX_CHARS, dtype=np.uint8)
    offsets = np.empty(n + 1, dtype=np.int64)
    size = _repr_texts(values.view(np.uint64), data, offsets)
    return _string_array(data, offsets, size)


def _string_array(data, offsets, size):
    n = len(offsets) - 1
    if size < 2**31:
        return pa.Array.from_buffers(
            pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data[:size])]
        )
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data[:size])]
    )


_INVERSE, _SPLIT = _tables()
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_TEN = np.uint64(10)
_NAN = np.frombuffer(b"nan", dtype=np.uint8).copy()
_INF = np.frombuffer(b"inf", dtype=np.uint8).copy()
_ZERO_TEXT = np.frombuffer(b"0.0", dtype=np.uint8).copy()
_DIGIT_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint8).copy()
_POW10 = np.array([10**i for i in range(18)], dtype=np.uint64)


@intrinsic
def _mul_shift(typingctx, m, mul_low, mul_high, j):
    """(m * (mul_high * 2**64 + mul_low)) >> j, in 192-bit integer arithmetic; the result fits
    in 64 bits."""
    sig = types.uint64(types.uint64, types.uint64, types.uint64, types.int64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(192)
        m, low, high, shift = (builder.zext(arg, wide) for arg in args)
        mul = builder.or_(builder.shl(high, ir.Constant(wide, 64)), low)
        return builder.trunc(builder.lshr(builder.mul(m, mul), shift), ir.IntType(64))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _pow5_factor(value):
    count = 0
    while value > _ZERO:
        q = value // np.uint64(5)
        if value - q * np.uint64(5) != _ZERO:
            break
        value = q
        count += 1
    return count


@njit(cache=True, nogil=True, inline="always")
def _pow5_bits(e):
    return ((e * 1217359) >> 19) + 1


@njit(cache=True, nogil=True)
def _shortest(mantissa, exponent):
    """(digits, decimal exponent) of the shortest decimal reading back as the float."""
    if exponent == 0:
        e2 = 1 - 1023 - 52 - 2
        m2 = mantissa
    else:
        e2 = exponent - 1023 - 52 - 2
        m2 = (_ONE << np.uint64(52)) | mantissa
    even = (m2 & _ONE) == _ZERO
    mv = np.uint64(4) * m2
    mm_shift = np.uint64(1) if (mantissa != _ZERO or exponent <= 1) else np.uint64(0)
    vm_trailing = False
    vr_trailing = False
    if e2 >= 0:
        q = ((e2 * 78913) >> 18) - (1 if e2 > 3 else 0)
        e10 = q
        k = _POW5_INV_BITCOUNT + _pow5_bits(q) - 1
        i = -e2 + q + k
        vr = _mul_shift(mv, _INVERSE[q, 0], _INVERSE[q, 1], i)
        vp = _mul_shift(mv + np.uint64(2), _INVERSE[q, 0], _INVERSE[q, 1], i)
        vm = _mul_shift(mv - _ONE - mm_shift, _INVERSE[q, 0], _INVERSE[q, 1], i)
        if q <= 21:
            if mv % np.uint64(5) == _ZERO:
                vr_trailing = _pow5_factor(mv) >= q
            elif even:
                vm_trailing = _pow5_factor(mv - _ONE - mm_shift) >= q
            elif _pow5_factor(mv + np.uint64(2)) >= q:
                vp -= _ONE
    else:
        q = ((-e2 * 732923) >> 20) - (1 if -e2 > 1 else 0)
        e10 = q + e2
        i = -e2 - q
        k = _pow5_bits(i) - _POW5_BITCOUNT
        j = q - k
        vr = _mul_shift(mv, _SPLIT[i, 0], _SPLIT[i, 1], j)
        vp = _mul_shift(mv + np.uint64(2), _SPLIT[i, 0], _SPLIT[i, 1], j)
        vm = _mul_shift(mv - _ONE - mm_shift, _SPLIT[i, 0], _SPLIT[i, 1], j)
        if q <= 1:
            vr_trailing = True
            if even:
                vm_trailing = mm_shift == _ONE
            else:
                vp -= _ONE
        elif q < 63:
            vr_trailing = (mv & ((_ONE << np.uint64(q)) - _ONE)) == _ZERO
    removed = 0
    last = _ZERO
    if vm_trailing or vr_trailing:
        while vp // _TEN > vm // _TEN:
            vm_trailing = vm_trailing and vm % _TEN == _ZERO
            vr_trailing = vr_trailing and last == _ZERO
            last = vr % _TEN
            vr //= _TEN
            vp //= _TEN
            vm //= _TEN
            removed += 1
        if vm_trailing:
            while vm % _TEN == _ZERO:
                vr_trailing = vr_trailing and last == _ZERO
                last = vr % _TEN
                vr //= _TEN
                vp //= _TEN
                vm //= _TEN
                removed += 1
        if vr_trailing and last == np.uint64(5) and vr % np.uint64(2) == _ZERO:
            last = np.uint64(4)  # a tie: to the even digit
        up = (vr == vm and (not even or not vm_trailing)) or last >= np.uint64(5)
    else:
        up = False
        hundred = np.uint64(100)
        if vp // hundred > vm // hundred:
            up = vr % hundred >= np.uint64(50)
            vr //= hundred
            vp //= hundred
            vm //= hundred
            removed += 2
        while vp // _TEN > vm // _TEN:
            up = vr % _TEN >= np.uint64(5)
            vr //= _TEN
            vp //= _TEN
            vm //= _TEN
            removed += 1
        up = up or vr == vm
    return vr + (_ONE if up else _ZERO), e10 + removed


@njit(cache=True, nogil=True, inline="always")
def _put(out, pos, text):
    for c in text:
        out[pos] = c
        pos += 1
    return pos


@njit(cache=True, nogil=True, inline="always")
def _decimal_length(v):
    n = 1
    while n < 17 and v >= _POW10[n]:
        n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _write_digits(out, end, v):
    """Writes the decimal digits of v (v > 0) so that the last one is at end - 1."""
    while v >= np.uint64(100):
        q = v // np.uint64(100)
        r = np.int64(v - q * np.uint64(100))
        out[end - 1] = _DIGIT_PAIRS[2 * r + 1]
        out[end - 2] = _DIGIT_PAIRS[2 * r]
        end -= 2
        v = q
    if v >= _TEN:
        r = np.int64(v)
        out[end - 1] = _DIGIT_PAIRS[2 * r + 1]
        out[end - 2] = _DIGIT_PAIRS[2 * r]
    else:
        out[end - 1] = np.uint8(48 + np.int64(v))


@njit(cache=True, nogil=True)
def _repr_texts(bits, out, offsets):
    pos = 0
    offsets[0] = 0
    for index in range(len(bits)):
        b = bits[index]
        negative = (b >> np.uint64(63)) != _ZERO
        exponent = np.int64((b >> np.uint64(52)) & np.uint64(0x7FF))
        mantissa = b & ((_ONE << np.uint64(52)) - _ONE)
        if exponent == 0x7FF:
            if mantissa != _ZERO:
                pos = _put(out, pos, _NAN)
            else:
                if negative:
                    out[pos] = 45  # '-'
                    pos += 1
                pos = _put(out, pos, _INF)
            offsets[index + 1] = pos
            continue
        if negative:
            out[pos] = 45
            pos += 1
        if exponent == 0 and mantissa == _ZERO:
            pos = _put(out, pos, _ZERO_TEXT)
            offsets[index + 1] = pos
            continue
        value, e10 = _shortest(mantissa, exponent)
        count = _decimal_length(value)
        # the decimal point follows the first `point` digits
        point = count + e10
        if -4 < point <= 16:
            if point <= 0:
                out[pos] = 48
                out[pos + 1] = 46  # '0.'
                pos += 2
                for _ in range(-point):
                    out[pos] = 48
                    pos += 1
                _write_digits(out, pos + count, value)
                pos += count
            elif point >= count:
                _write_digits(out, pos + count, value)
                pos += count
                for _ in range(point - count):
                    out[pos] = 48
                    pos += 1
                out[pos] = 46
                out[pos + 1] = 48  # '.0'
                pos += 2
            else:
                _write_digits(out, pos + count + 1, value)
                for k in range(pos, pos + point):
                    out[k] = out[k + 1]
                out[pos + point] = 46
                pos += count + 1
        else:
            # d.ddddde+XX: the digits written one place to the right, the first moved back
            _write_digits(out, pos + count + 1, value)
            out[pos] = out[pos + 1]
            if count > 1:
                out[pos + 1] = 46
                pos += count + 1
            else:
                pos += 1
            out[pos] = 101  # 'e'
            exp = point - 1
            if exp < 0:
                out[pos + 1] = 45
                exp = -exp
            else:
                out[pos + 1] = 43  # '+'
            pos += 2
            if exp >= 100:
                out[pos] = 48 + exp // 100
                pos += 1
                exp %= 100
            out[pos] = 48 + exp // 10
            out[pos + 1] = 48 + exp % 10
            pos += 2
        offsets[index + 1] = pos
    return pos
