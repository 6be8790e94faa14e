"""Apache Spark through its Thrift JDBC/ODBC server (impyla): parquet load files read by Spark itself."""

from __future__ import annotations

from loadbay.common.destination import DestinationConfig
from loadbay.destinations.spark.capabilities import capabilities as spark_capabilities
from loadbay.destinations.spark.configuration import SparkConfig
from loadbay.destinations.sql_destination import ClientClasses, SqlDestination


class spark(SqlDestination):  # noqa: N801
    """``spark(credentials="spark://loader:***@127.0.0.1:10000")``: each dataset is a Spark database of
    parquet tables; load files are read by Spark from the path the job names (``jobs.staged_path``)."""

    destination_type = "spark"
    spec = SparkConfig
    capabilities = spark_capabilities

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        from loadbay.destinations.spark.job_client import SparkJobClient
        from loadbay.destinations.spark.sql_client import SparkSqlClient

        return SparkSqlClient, SparkJobClient


__all__ = ["spark"]
