from piccolo.columns import Boolean, Timestamptz, Varchar
from piccolo.table import Table


class Location(Table, tablename="location"):
    """A branch of the gym. Staff, cash drawers and payments belong to one."""

    code = Varchar(length=12, unique=True, help_text="Short code, e.g. WST")
    name = Varchar(length=100, unique=True)
    address = Varchar(length=255, default="")
    phone = Varchar(length=20, default="")
    active = Boolean(default=True)
    created_at = Timestamptz()

    @classmethod
    def get_readable(cls):
        from piccolo.columns.readable import Readable

        return Readable(template="%s", columns=[cls.name])
