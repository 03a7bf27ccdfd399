"""What "round-trips exactly" means in the codec tests: `assert_same`."""

from __future__ import annotations

import collections
import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np


def assert_same(a: Any, b: Any) -> None:
    """Equal in value and in exact type, all the way down (dict order, a float's bits, a
    zone's kind and name, a deque's maxlen, a defaultdict's factory, a numpy value's dtype,
    shape and bytes)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    elif isinstance(a, (float, complex, Decimal)):
        assert repr(a) == repr(b)
    elif isinstance(a, collections.defaultdict):
        assert a.default_factory is b.default_factory
        assert_same(dict(a), dict(b))
    elif isinstance(a, collections.deque):
        assert a.maxlen == b.maxlen
        assert_same(list(a), list(b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, (dt.datetime, dt.time)):
        assert a == b and a.fold == b.fold and type(a.tzinfo) is type(b.tzinfo)
        if a.tzinfo is not None:
            assert a.tzname() == b.tzname() and a.utcoffset() == b.utcoffset()
    elif isinstance(a, dt.timezone):
        assert a == b and a.tzname(None) == b.tzname(None)
    else:
        assert a == b
