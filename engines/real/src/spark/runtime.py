# ---------------------------------------------------------------------------------------------
# The runtime: the same in every generated script (engines/real/src/spark/runtime.py).
# ---------------------------------------------------------------------------------------------

TRACE_SCHEMA = StructType(
    [
        StructField("seq", LongType(), False),
        StructField("event_time_ms", LongType(), False),
        StructField("arrival_ns", LongType(), False),
        StructField("partition", IntegerType(), False),
        StructField("user", LongType(), False),
        StructField("session", LongType(), False),
        StructField("page", LongType(), False),
        StructField("ad", LongType(), False),
        StructField("kind", StringType(), False),
        StructField("dwell_ms", LongType(), False),
        StructField("price_cents", LongType(), False),
    ]
)
"""streamlab's trace row: the columns of workloads/src/trace/mod.rs's COLUMNS, in order."""

END_OF_STREAM = "END"
END_GRACE_S = 10.0
"""How long a windowed query waits, after reading the last row, for the batch that fires the
windows its final watermark closes."""


def trace_row(line):
    """Parses one trace row (CSV, no header, no quoting) into a tuple of TRACE_SCHEMA."""
    f = line.split(",")
    return (
        int(f[0]), int(f[1]), int(f[2]), int(f[3]), int(f[4]), int(f[5]),
        int(f[6]), int(f[7]), f[8], int(f[9]), int(f[10]),
    )


def hello(sock, token, role):
    """The handshake every connection to streamlab starts with."""
    sock.sendall(f"STREAMLAB {token} {role}\n".encode("ascii"))


class FeedPartition:
    """One source partition: a connection to the feeder and the rows it has sent that Spark has
    not committed yet. A thread reads the socket; `lines[0]` has offset `base`."""

    def __init__(self, host, port, token, partition, ready):
        self.partition = partition
        self.lines = []
        self.base = 0
        self.ended = False
        self._ready = ready
        self._sock = socket.create_connection((host, port))
        hello(self._sock, token, partition)
        threading.Thread(target=self._read, name=f"feed-{partition}", daemon=True).start()

    def _read(self):
        try:
            with self._sock.makefile("r", encoding="utf-8", newline="\n") as rows:
                for line in rows:
                    line = line.rstrip("\r\n")
                    if line == END_OF_STREAM:
                        break
                    if line:
                        with self._ready:
                            self.lines.append(line)
        finally:
            with self._ready:
                self.ended = True
                self._ready.notify_all()
            self._sock.close()

    def available(self):
        """The offset after the last row received."""
        return self.base + len(self.lines)

    def rows(self, start, end):
        """The rows of offsets [start, end)."""
        return self.lines[start - self.base : end - self.base]

    def commit(self, end):
        """Forgets the rows before `end`: Spark will never ask for them again."""
        if end > self.base:
            del self.lines[: end - self.base]
            self.base = end


class FeedSlice(InputPartition):
    """The rows of one source partition in one micro-batch, shipped to the task that parses
    them (the rows live in the driver's reader; a task cannot reach back to it)."""

    def __init__(self, partition, lines):
        super().__init__(partition)
        self.lines = lines


class StreamlabFeedReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Reads the feeder: one connection per source partition, opened on the first offset Spark
    asks for, i.e. when the query starts (so the feeder's readiness handshake starts its clock
    then). Offsets are rows received per partition: {"p0": n0, "p1": n1, ..., "ended": true
    once every partition sent END and the offset covers every row}.

    Spark also builds a reader in its planning worker and pickles it to ship `read` to the
    tasks: only the options travel, and such a copy never connects."""

    def __init__(self, options):
        self._options = dict(options)
        self._max_rows = int(self._options.get("max_rows_per_batch", "0"))
        self._wait_for_end = self._options.get("wait_for_end", "false") == "true"
        self._ready = threading.Condition()
        self._target = None
        self._feeds = None

    def __getstate__(self):
        return {"_options": self._options}

    def __setstate__(self, state):
        self.__init__(state["_options"])

    def _connect(self):
        if self._feeds is None:
            host, port = self._options["feeder"].rsplit(":", 1)
            self._feeds = [
                FeedPartition(host, int(port), self._options["token"], p, self._ready)
                for p in range(int(self._options["partitions"]))
            ]
        return self._feeds

    def _all_ended(self):
        return all(f.ended for f in self._feeds)

    def _await_end(self):
        self._connect()
        with self._ready:
            while not self._all_ended():
                self._ready.wait()

    def _offset(self, counts):
        offset = {f"p{f.partition}": n for f, n in zip(self._feeds, counts)}
        if self._all_ended() and all(n == f.available() for f, n in zip(self._feeds, counts)):
            offset["ended"] = True
        return offset

    def initialOffset(self):
        return {f"p{f.partition}": 0 for f in self._connect()}

    def getDefaultReadLimit(self):
        return ReadMaxRows(self._max_rows) if self._max_rows > 0 else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self):
        self._await_end()
        with self._ready:
            self._target = [f.available() for f in self._feeds]

    def latestOffset(self, start, limit):
        self._connect()
        if self._wait_for_end:
            self._await_end()
        with self._ready:
            counts = [f.available() for f in self._feeds]
        if self._target is not None:
            counts = [min(n, t) for n, t in zip(counts, self._target)]
        if isinstance(limit, ReadMaxRows):
            budget = limit.max_rows
            begun = [start.get(f"p{f.partition}", 0) for f in self._feeds]
            capped = list(begun)
            while budget > 0 and capped != counts:
                share = max(1, budget // len(self._feeds))
                for i, n in enumerate(counts):
                    take = min(share, n - capped[i], budget)
                    capped[i] += take
                    budget -= take
            counts = capped
        return self._offset(counts)

    def partitions(self, start, end):
        self._connect()
        slices = []
        with self._ready:
            for f in self._feeds:
                key = f"p{f.partition}"
                lo, hi = start.get(key, 0), end.get(key, 0)
                if hi > lo:
                    slices.append(FeedSlice(f.partition, f.rows(lo, hi)))
        return slices

    def read(self, partition):
        for line in partition.lines:
            yield trace_row(line)

    def commit(self, end):
        self._connect()
        with self._ready:
            for f in self._feeds:
                f.commit(end.get(f"p{f.partition}", 0))

    def stop(self):
        for f in self._feeds or []:
            try:
                f._sock.close()
            except OSError:
                pass


class StreamlabFeed(DataSource):
    """The `streamlab-feed` streaming source (Spark's Python Data Source API). Options: feeder
    (host:port), token, partitions, and optionally max_rows_per_batch, wait_for_end."""

    @classmethod
    def name(cls):
        return "streamlab-feed"

    def schema(self):
        return TRACE_SCHEMA

    def streamReader(self, schema):
        return StreamlabFeedReader(self.options)


def number(v):
    """A number as streamlab writes it: an integral float without its `.0` (Rust's `{}`)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


class ReceiverSink:
    """The foreachBatch writer: one connection to streamlab's receiver for the whole query,
    one output row per line. Each window row says whether it updates an earlier emission of the
    same window (streamlab's is_update), remembered here, on the driver.

    Not idempotent: a batch Spark replays after a crash is sent again (batch ids are not yet
    deduplicated; the receiver would have to)."""

    def __init__(self, receiver, token, windowed):
        host, port = receiver.rsplit(":", 1)
        self._sock = socket.create_connection((host, int(port)))
        hello(self._sock, token, "sink")
        self._windowed = windowed
        self._emitted = set()

    def write_batch(self, batch, batch_id):
        lines = []
        for row in batch.collect():
            if self._windowed:
                window = (row["key"], row["window_start_ms"], row["window_end_ms"])
                is_update = window in self._emitted
                self._emitted.add(window)
                cells = [
                    row["key"], row["window_start_ms"], row["window_end_ms"], row["count"],
                    number(row["value"]), "true" if is_update else "false", row["origin_arrival_ns"],
                ]
            else:
                cells = list(row)
            lines.append(",".join(str(c) for c in cells) + "\n")
        if lines:
            self._sock.sendall("".join(lines).encode("utf-8"))

    def close(self):
        self._sock.close()


class ProgressLog(StreamingQueryListener):
    """Appends every StreamingQueryProgress, as one JSON line, to the progress file."""

    def __init__(self, path):
        self._out = open(path, "a", encoding="utf-8")
        self.ended = threading.Event()
        self.batches_after_end = 0

    def onQueryStarted(self, event):
        pass

    def onQueryProgress(self, event):
        progress = json.loads(event.progress.json)
        self._out.write(json.dumps(progress, separators=(",", ":")) + "\n")
        self._out.flush()
        if self.ended.is_set():
            self.batches_after_end += 1
        for source in progress.get("sources", []):
            end = source.get("endOffset")
            if isinstance(end, str):
                end = json.loads(end)
            if isinstance(end, dict) and end.get("ended"):
                self.ended.set()

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        self._out.flush()


def arguments():
    """The run's connection details: everything the scenario does not fix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeder", required=True, help="the feeder's host:port")
    parser.add_argument("--receiver", required=True, help="the receiver's host:port")
    parser.add_argument("--token", required=True, help="the run's token")
    parser.add_argument("--partitions", required=True, type=int, help="source partitions")
    parser.add_argument("--campaigns", required=True, help="the campaign table: CSV ad,campaign")
    parser.add_argument("--progress", required=True, help="file each query progress is appended to")
    parser.add_argument("--checkpoint", required=True, help="the query's checkpoint directory")
    parser.add_argument("--master", default=MASTER, help=f"Spark master (default {MASTER})")
    parser.add_argument("--jar", default=None, help="streamlab's helper jar (unused by Spark)")
    return parser.parse_args()


def main():
    args = arguments()
    start_lifeline()
    builder = SparkSession.builder.appName(APP_NAME).master(args.master)
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.dataSource.register(StreamlabFeed)
    progress = ProgressLog(args.progress)
    spark.streams.addListener(progress)

    reader = (
        spark.readStream.format("streamlab-feed")
        .option("feeder", args.feeder)
        .option("token", args.token)
        .option("partitions", str(args.partitions))
    )
    for key, value in SOURCE_OPTIONS.items():
        reader = reader.option(key, value)
    events = reader.load()
    campaigns = spark.read.csv(args.campaigns, header=True, schema="ad LONG, campaign LONG")

    sink = ReceiverSink(args.receiver, args.token, WINDOWED)
    writer = (
        pipeline(events, campaigns)
        .writeStream.outputMode(OUTPUT_MODE)
        .option("checkpointLocation", args.checkpoint)
        .foreachBatch(sink.write_batch)
    )
    if TRIGGER:
        writer = writer.trigger(**TRIGGER)
    query = writer.start()
    # Ends by itself under once / available_now; otherwise once a batch has read every row the
    # feeder sent (its end offset says "ended") and, for state (windows, a join's outer rows),
    # the no-data batch after it has fired what the final watermark closes (or END_GRACE_S passed
    # without one); or when the driver ends the process group.
    ended_at = None
    while query.isActive:
        query.awaitTermination(0.1)
        if progress.ended.is_set():
            ended_at = ended_at or time.monotonic()
            if not STATEFUL or progress.batches_after_end > 0:
                break
            if time.monotonic() - ended_at > END_GRACE_S:
                break
    if query.isActive:
        query.stop()
    sink.close()
    spark.stop()


if __name__ == "__main__":
    main()
