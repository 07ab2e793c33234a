"""Fixed-window request counters shared by every web process (the pay page's rate limit).

One row per bucket (e.g. `pay:<client address>`); the window restarts in place, so the table
stays as small as the number of recent clients. portal/ratelimit.py is the only writer.
"""

from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.table import Table


class RateLimit(Table, tablename="rate_limit"):
    bucket = Varchar(length=200, unique=True)
    window_start = Timestamptz()
    hits = Integer(default=0)
