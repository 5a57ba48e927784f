"""Results for analytics: a Glue table over the results bucket's JSON lines, queried with Athena.

Partitions are the key's date= and stream= segments (Hive style): after new streams arrive, run
`MSCK REPAIR TABLE <database>.seconds` (or add partitions) before querying.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import MonitorConfig
from lambdas.shared.results import RESULTS_PREFIX

DEFECT_STRUCT = "struct<type:string,start_s:double,end_s:double,confidence:double>"


class Analytics(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig,
                 results_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.database_name = f"stream_quality_{config.stage}".replace("-", "_")
        self.table_name = "seconds"
        database = glue.CfnDatabase(
            self, "Database", catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="Stream-quality findings, one row per stream-second"))
        table = glue.CfnTable(
            self, "Seconds",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "json", "EXTERNAL": "TRUE"},
                partition_keys=[glue.CfnTable.ColumnProperty(name="date", type="string"),
                                glue.CfnTable.ColumnProperty(name="stream", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=f"s3://{results_bucket.bucket_name}/{RESULTS_PREFIX}",
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe",
                        # Extra defect fields (duration_s, offset_ms, ...) differ per detector: ignored here,
                        # still in the JSON for DuckDB and other readers.
                        parameters={"ignore.malformed.json": "FALSE"}),
                    columns=[
                        glue.CfnTable.ColumnProperty(name="stream_id", type="string"),
                        glue.CfnTable.ColumnProperty(name="source", type="string"),
                        glue.CfnTable.ColumnProperty(name="second", type="int"),
                        glue.CfnTable.ColumnProperty(name="defects", type=f"array<{DEFECT_STRUCT}>"),
                    ],
                ),
            ),
        )
        table.add_resource_dependency(database)
        self.workgroup = athena.CfnWorkGroup(
            self, "WorkGroup",
            name=f"{Stack.of(self).stack_name}-stream-quality",
            recursive_delete_option=config.sandbox,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results_bucket.bucket_name}/athena/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"),
                ),
            ),
        )
