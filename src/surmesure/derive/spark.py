"""The derive expressions on Apache Spark, through Ibis's PySpark backend.

Every metric in :mod:`surmesure.derive` is an Ibis expression over tables named as in the store
(``identifiers``, ``orders``, ``order_lines``, ...), so past one machine the same functions run
on Spark: give them an Ibis PySpark backend in which those names resolve, whether to tables of a
lake or, as here, to temporary views copied from the store.

Needs the ``spark`` extra (``pip install 'surmesure[spark]'``: PySpark 4.0 and Java 17).
Timestamps in the store are naive UTC, so the session's time zone is set to UTC: Spark would
otherwise shift them to the machine's zone and move orders across midnight.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

from surmesure.derive.source import ibis_backend
from surmesure.errors import InvalidInput
from surmesure.store.engine import Store

# the tables RFM, CLV statistics and engagement read
ORDER_TABLES = ("identifiers", "orders", "order_lines")


def local_session(
    *,
    master: str | None = None,
    cores: int = 1,
    shuffle_partitions: int = 2,
    driver_memory: str = "2g",
    app_name: str = "surmesure",
) -> Any:
    """A small Spark session (on ``master``, default ``local[cores]``; no UI, UTC, a throwaway
    warehouse); copying store tables goes through the driver, hence its memory."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise InvalidInput(
            "PySpark is not installed.",
            hint="install the spark extra: pip install 'surmesure[spark]'",
            field="spark",
        ) from error
    warehouse = tempfile.mkdtemp(prefix="surmesure-spark-")
    builder: Any = SparkSession.builder
    return (
        builder.master(master or f"local[{cores}]")
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.driver.memory", driver_memory)
        .config("spark.default.parallelism", str(cores))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
        .getOrCreate()
    )


def spark_backend(session: Any) -> Any:
    """An Ibis backend on ``session``."""
    import ibis

    return ibis.pyspark.connect(session)


def copy_tables(store: Store, session: Any, tables: Sequence[str] = ORDER_TABLES) -> dict[str, int]:
    """Copy ``tables`` of the store into temporary views of ``session`` with the same names;
    returns the rows copied per table."""
    copied = {}
    with ibis_backend(store) as backend:
        for name in tables:
            data = backend.table(name).to_pyarrow()
            session.createDataFrame(data).createOrReplaceTempView(name)
            copied[name] = data.num_rows
    return copied
