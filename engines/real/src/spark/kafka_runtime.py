
# ---------------------------------------------------------------------------------------------
# The Kafka runtime (engines/real/src/spark/kafka_runtime.py): a script generated for
# `transport = "kafka"` runs this `main_kafka` instead of the feeder's `main`.
# ---------------------------------------------------------------------------------------------

BATCH_HEADER = "streamlab.batch"
"""The record header every output record carries: the id of the micro-batch that wrote it."""

KAFKA = "org.apache.kafka"


def kafka_events(spark, args):
    """The input topic read by Spark's Kafka source, each record's value (a trace row) parsed
    into TRACE_SCHEMA's columns; the `END` record that closes a partition is dropped."""
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", args.input_topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    line = F.col("value").cast("string")
    cells = F.split(line, ",")
    columns = [cells.getItem(i).cast(f.dataType).alias(f.name) for i, f in enumerate(TRACE_SCHEMA.fields)]
    return raw.where(line != END_OF_STREAM).select(*columns)


def output_value(results):
    """An output row as the receiver's line, computed in SQL (Real-Time Mode writes straight to
    the Kafka sink: no foreachBatch, so no Python per batch). A window row is marked `false`
    (not an update) every time: the sink cannot remember which windows it wrote; streamlab
    keeps the latest value of each window."""
    if WINDOWED:
        value = F.col("value")
        cells = [
            F.col("key"), F.col("window_start_ms"), F.col("window_end_ms"), F.col("count"),
            F.when(value == F.floor(value), value.cast("long")).otherwise(value),
            F.lit("false"), F.col("origin_arrival_ns"),
        ]
    else:
        cells = [F.col(c) for c in results.columns]
    return results.select(F.concat_ws(",", *[c.cast("string") for c in cells]).alias("value"))


class _Lines:
    """Stands in for the receiver's socket under a ReceiverSink: the sink turns each batch into
    the receiver's lines (and remembers which windows it emitted), and they are kept here to be
    written to the output topic instead."""

    def __init__(self):
        self.data = b""

    def sendall(self, data):
        self.data += data

    def take(self):
        lines, self.data = self.data.decode("utf-8").splitlines(), b""
        return lines

    def close(self):
        pass


def last_batch_written(jvm, bootstrap, topic):
    """The largest batch id in the output topic's committed records (-1 if none): the batches a
    restarted query must not write again. Read once, at start, with a read_committed consumer
    (so a transaction the killed predecessor left open, which initTransactions aborts, is not
    counted)."""
    props = jvm.java.util.Properties()
    for k, v in {
        "bootstrap.servers": bootstrap,
        "isolation.level": "read_committed",
        "enable.auto.commit": "false",
        "key.deserializer": f"{KAFKA}.common.serialization.ByteArrayDeserializer",
        "value.deserializer": f"{KAFKA}.common.serialization.ByteArrayDeserializer",
    }.items():
        props.setProperty(k, v)
    consumer = jvm.org.apache.kafka.clients.consumer.KafkaConsumer(props)
    try:
        infos = consumer.partitionsFor(topic)
        parts = jvm.java.util.ArrayList()
        for i in range(infos.size()):
            parts.add(jvm.org.apache.kafka.common.TopicPartition(topic, infos.get(i).partition()))
        consumer.assign(parts)
        consumer.seekToBeginning(parts)
        ends = consumer.endOffsets(parts)
        last = -1
        while any(consumer.position(parts.get(i)) < ends.get(parts.get(i)) for i in range(parts.size())):
            records = consumer.poll(jvm.java.time.Duration.ofMillis(500)).iterator()
            while records.hasNext():
                header = records.next().headers().lastHeader(BATCH_HEADER)
                if header is not None:
                    last = max(last, int(bytes(header.value()).decode("ascii")))
        return last
    finally:
        consumer.close()


class KafkaBatchSink:
    """The foreachBatch writer of a micro-batch query: each batch's rows written to the output
    topic in one Kafka transaction, every record carrying its batch id (BATCH_HEADER). Spark
    re-runs, after a restart, the batch it had not committed; a batch the output topic already
    holds (its id at most `last_batch_written` at start) is skipped, and a transaction the killed
    predecessor left open is aborted by initTransactions (same transactional.id). So each
    batch's output is in the topic exactly once for a read_committed reader."""

    def __init__(self, spark, bootstrap, topic, transactional_id):
        jvm = spark._jvm
        self._jvm = jvm
        self._topic = topic
        props = jvm.java.util.Properties()
        for k, v in {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "enable.idempotence": "true",
            "linger.ms": "0",
            "key.serializer": f"{KAFKA}.common.serialization.StringSerializer",
            "value.serializer": f"{KAFKA}.common.serialization.StringSerializer",
        }.items():
            props.setProperty(k, v)
        self._producer = jvm.org.apache.kafka.clients.producer.KafkaProducer(props)
        self._producer.initTransactions()
        self.done_through = last_batch_written(jvm, bootstrap, topic)
        self._lines = _Lines()
        self._rows = ReceiverSink.__new__(ReceiverSink)
        self._rows._sock, self._rows._windowed, self._rows._emitted = self._lines, WINDOWED, set()

    def write_batch(self, batch, batch_id):
        if batch_id <= self.done_through:
            return
        self._rows.write_batch(batch, batch_id)
        lines = self._lines.take()
        if not lines:
            return
        header = str(batch_id).encode("ascii")
        self._producer.beginTransaction()
        for line in lines:
            record = self._jvm.org.apache.kafka.clients.producer.ProducerRecord(self._topic, line.split(",", 1)[0], line)
            record.headers().add(BATCH_HEADER, header)
            self._producer.send(record)
        self._producer.commitTransaction()

    def close(self):
        self._producer.close()


class ReadySignal(StreamingQueryListener):
    """Creates the ready file once the query has started: streamlab starts its producer's
    schedule (the run clock) then."""

    def __init__(self, path):
        self._path = path

    def onQueryStarted(self, event):
        with open(self._path, "w", encoding="utf-8") as f:
            f.write(str(event.id) + "\n")

    def onQueryProgress(self, event):
        pass

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        pass


def kafka_arguments():
    """The run's Kafka details: everything the scenario does not fix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="the Kafka cluster's bootstrap servers")
    parser.add_argument("--input-topic", required=True, help="the topic of the workload's events")
    parser.add_argument("--output-topic", required=True, help="the topic results are written to")
    parser.add_argument("--campaigns", required=True, help="the campaign table: CSV ad,campaign")
    parser.add_argument("--progress", required=True, help="file each query progress is appended to")
    parser.add_argument("--checkpoint", required=True, help="the query's checkpoint directory")
    parser.add_argument("--ready", required=True, help="file created once the query has started")
    parser.add_argument("--master", default=MASTER, help=f"Spark master (default {MASTER})")
    return parser.parse_args()


def main_kafka():
    args = kafka_arguments()
    start_lifeline()
    builder = SparkSession.builder.appName(APP_NAME).master(args.master)
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.streams.addListener(ProgressLog(args.progress))
    spark.streams.addListener(ReadySignal(args.ready))
    campaigns = spark.read.csv(args.campaigns, header=True, schema="ad LONG, campaign LONG")
    results = pipeline(kafka_events(spark, args), campaigns)
    if "realTime" in TRIGGER:
        # Real-Time Mode allows no foreachBatch: the Kafka sink writes each row as it is made.
        writer = (
            output_value(results)
            .writeStream.format("kafka")
            .outputMode(OUTPUT_MODE)
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("topic", args.output_topic)
            .option("checkpointLocation", args.checkpoint)
        )
    else:
        sink = KafkaBatchSink(spark, args.bootstrap, args.output_topic, f"streamlab-{args.output_topic}")
        writer = (
            results.writeStream.outputMode(OUTPUT_MODE)
            .option("checkpointLocation", args.checkpoint)
            .foreachBatch(sink.write_batch)
        )
    if TRIGGER:
        writer = writer.trigger(**TRIGGER)
    # Spark's Kafka source 4.2.0 asserts an active session (SparkSession.getActiveSession) on the
    # query's thread, which Spark 4.3.0 sets only for its classic session class; the thread
    # inherits the active session of the thread that starts the query, so set it here.
    spark._jvm.org.apache.spark.sql.SparkSession.setActiveSession(spark._jsparkSession)
    query = writer.start()
    # A query on Kafka never sees the end of its input: streamlab ends the process group once
    # its producer has finished and no result has come for a quiet period.
    query.awaitTermination()


if __name__ == "__main__":
    main_kafka()
