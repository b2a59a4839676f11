
# ---------------------------------------------------------------------------------------------
# The Kafka runtime (engines/real/src/flink/kafka_runtime.py): a job generated for
# `transport = "kafka"` runs this `main_kafka` instead of the feeder's `main`.
# ---------------------------------------------------------------------------------------------

import time

SHADED_KAFKA = "org.apache.flink.kafka.shaded.org.apache.kafka"
"""Where flink-sql-connector-kafka keeps its copy of kafka-clients."""

TRANSACTION_TIMEOUT_MS = 60000
"""The sink's `transaction.timeout.ms`: the connector's default (1 h) is above the broker's
`transaction.max.timeout.ms` (15 min) and would be refused; a minute is far above a checkpoint
interval and a restart, so no transaction of a live job times out."""

READY_POLL_S = 0.1
"""How often the job's state is read from Flink's REST API until every task is running."""


def source_group(args):
    """The consumer group the Kafka source commits its checkpointed offsets to (on each completed
    checkpoint; Flink restores from its own checkpoint, the group is only what a restart reads
    to count what it replays)."""
    return f"streamlab-{args.input_topic}"


def kafka_events_table(args):
    """The source table: Flink's Kafka source on the input topic, from the earliest offset, the
    value a trace row (CSV, TRACE_COLUMNS in order), the record timestamp (the event time the
    producer wrote) as the rowtime, and the watermark of the engine's out-of-orderness, per Kafka
    partition (pushed into the source). A partition's `END` record is no trace row: the CSV
    format skips it (`csv.ignore-parse-errors`)."""
    return f"""CREATE TEMPORARY TABLE events ({TRACE_COLUMNS},
    event_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
    WATERMARK FOR event_ts AS {WATERMARK}
) WITH (
    'connector' = 'kafka',
    'topic' = {sql_str(args.input_topic)},
    'properties.bootstrap.servers' = {sql_str(args.bootstrap)},
    'properties.group.id' = {sql_str(source_group(args))},
    'scan.startup.mode' = 'earliest-offset',
    'format' = 'csv',
    'csv.ignore-parse-errors' = 'true'
)"""


def kafka_results_table(args):
    """The sink table: Flink's Kafka sink on the output topic, one record per row whose value is
    the receiver's CSV line (the helper jar's `streamlab-line` format), with SINK_GUARANTEE:
    exactly-once puts each checkpoint's rows in Kafka transactions (ids prefixed per run: the
    output topic's name), committed when the checkpoint completes; at-least-once sends every row
    at once. One sink subtask, as on the feeder."""
    return f"""CREATE TEMPORARY TABLE receiver ({SINK_COLUMNS}
) WITH (
    'connector' = 'kafka',
    'topic' = {sql_str(args.output_topic)},
    'properties.bootstrap.servers' = {sql_str(args.bootstrap)},
    'properties.transaction.timeout.ms' = '{TRANSACTION_TIMEOUT_MS}',
    'format' = 'streamlab-line',
    'sink.delivery-guarantee' = '{SINK_GUARANTEE}',
    'sink.transactional-id-prefix' = {sql_str("streamlab-" + args.output_topic)},
    'sink.parallelism' = '1'
)"""


def write_committed_offsets(jvm, args):
    """Writes the source group's committed input offsets, `partition,offset` per line, to
    `args.committed`: the offsets of the last checkpoint the killed job completed, from which the
    restored job reads again. Read with the connector's shaded consumer before the job starts."""
    props = jvm.java.util.Properties()
    props.setProperty("bootstrap.servers", args.bootstrap)
    props.setProperty("group.id", source_group(args))
    props.setProperty("enable.auto.commit", "false")
    bytes_in = getattr(jvm, SHADED_KAFKA).common.serialization.ByteArrayDeserializer
    consumer = getattr(jvm, SHADED_KAFKA).clients.consumer.KafkaConsumer(props, bytes_in(), bytes_in())
    try:
        parts = jvm.java.util.HashSet()
        infos = consumer.partitionsFor(args.input_topic)
        for i in range(infos.size()):
            parts.add(getattr(jvm, SHADED_KAFKA).common.TopicPartition(args.input_topic, infos.get(i).partition()))
        committed = consumer.committed(parts)
        with open(args.committed, "w", encoding="utf-8") as f:
            for tp in parts:
                meta = committed.get(tp)
                if meta is not None:
                    f.write(f"{tp.partition()},{meta.offset()}\n")
    finally:
        consumer.close()


def wait_running(rest, job_id, ready):
    """Creates the ready file once the job and every one of its tasks are RUNNING (Flink's REST
    API, /jobs/<id>): streamlab starts its producer's schedule (the run clock) then."""
    url = f"{rest}/jobs/{job_id}"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                job = json.load(r)
            vertices = job.get("vertices", [])
            if job.get("state") == "RUNNING" and vertices and all(v.get("status") == "RUNNING" for v in vertices):
                break
        except (OSError, ValueError):
            pass
        time.sleep(READY_POLL_S)
    with open(ready, "w", encoding="utf-8") as f:
        f.write(str(job_id) + "\n")


def kafka_arguments():
    """The run's Kafka details: everything the scenario does not fix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="the Kafka cluster's bootstrap servers")
    parser.add_argument("--input-topic", required=True, help="the topic of the workload's events")
    parser.add_argument("--output-topic", required=True, help="the topic results are written to")
    parser.add_argument("--campaigns", required=True, help="the campaign table: CSV ad,campaign")
    parser.add_argument("--progress", required=True, help="file each completed checkpoint is appended to")
    parser.add_argument("--checkpoint", required=True, help="the job's checkpoint directory")
    parser.add_argument("--ready", required=True, help="file created once every task is running")
    parser.add_argument("--jar", required=True, help="streamlab's helper jar")
    parser.add_argument(
        "--connector", required=True, action="append", help="a jar of Flink's Kafka connector (repeatable)"
    )
    parser.add_argument("--restore", default=None, help="a retained checkpoint (chk-N) to restore the job from")
    parser.add_argument("--committed", default=None, help="with --restore: file the source's committed offsets go to")
    parser.add_argument("--master", default=None, help="a JobManager's REST host:port (default: a local MiniCluster)")
    return parser.parse_args()


def main_kafka():
    args = kafka_arguments()
    start_lifeline()
    config, rest = configuration(args)
    config.set_string("pipeline.jars", ";".join(file_url(j) for j in [args.jar, *args.connector]))
    # A killed job's checkpoints stay where they are; a cancelled one's too, so a restart can
    # always name the newest completed chk-N.
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    if args.restore:
        config.set_string("execution.state-recovery.path", pathlib.Path(args.restore).resolve().as_uri())
    settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    t_env = TableEnvironment.create(settings)
    jvm = get_gateway().jvm
    if args.restore and args.committed:
        write_committed_offsets(jvm, args)
    t_env._j_tenv.createTemporarySystemFunction(
        "campaign_of", jvm.streamlab.flink.CampaignLookup.fromCsv(str(pathlib.Path(args.campaigns).resolve()))
    )
    t_env.execute_sql(kafka_events_table(args))
    t_env.execute_sql(kafka_results_table(args))
    for statement in PIPELINE:
        t_env.execute_sql(statement)
    result = t_env.execute_sql(INSERT)
    job_id = result.get_job_client().get_job_id()
    restored = f", restored from {args.restore}" if args.restore else ""
    print(f"streamlab: Flink job {job_id} submitted{restored}; REST API at {rest}", file=sys.stderr, flush=True)
    progress = CheckpointLog(rest, job_id, args.progress)
    progress.start()
    wait_running(rest, job_id, args.ready)
    # A job on Kafka never sees the end of its input: streamlab ends the process group once its
    # producer has finished and no result has come for a quiet period.
    try:
        result.wait()
    finally:
        progress.stop()


if __name__ == "__main__":
    main_kafka()
