"""The column types and table options a MySQL/MariaDB store uses, in one place for the
schema (``schema``) and every migration that creates tables (0001, 0003, 0004).

Every text column is utf8mb4 with a binary collation, so job ids and paths compare exactly as
everywhere else ("Backup" is not "backup", "a " is not "a"), whatever the server's default
charset; times are DOUBLE (a bare FLOAT is single precision there: a timestamp would lose
its seconds); long text is LONGTEXT (TEXT holds 64 KiB, less than an output tail); a file's
path key is 768 characters (InnoDB keys hold 3,072 bytes, 4 per utf8mb4 character).

Migrations are snapshots: what is here must never change meaning once a migration uses it
(no MySQL store could be created before these types, so 0001-0003 could adopt them). A new
type for a later migration gets a new name. Imports nothing of the scheduler.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

MYSQL = ("mysql", "mariadb")
MYSQL_TABLE: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
    # the same for a mariadb:// URL (that dialect reads only its own prefix)
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
}
MYSQL_PATH_CHARS = 768


def seconds() -> TypeEngine[float]:
    """A time in seconds since the epoch: DOUBLE on MySQL/MariaDB, Float elsewhere."""
    return Float().with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL)


def long_text() -> TypeEngine[str]:
    """Text of any length: LONGTEXT on MySQL/MariaDB, Text elsewhere."""
    return Text().with_variant(mysql.LONGTEXT(), *MYSQL)
