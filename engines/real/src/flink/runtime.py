# ---------------------------------------------------------------------------------------------
# The runtime: the same in every generated script (engines/real/src/flink/runtime.py).
# ---------------------------------------------------------------------------------------------

TRACE_COLUMNS = """
    seq BIGINT,
    event_time_ms BIGINT,
    arrival_ns BIGINT,
    `partition` INT,
    `user` BIGINT,
    `session` BIGINT,
    page BIGINT,
    ad BIGINT,
    kind STRING,
    dwell_ms BIGINT,
    price_cents BIGINT"""
"""streamlab's trace row: the columns of workloads/src/trace/mod.rs's COLUMNS, in order (the
helper jar's source checks them)."""

PROGRESS_POLL_S = 0.2
"""How often the checkpoint statistics are read from Flink's REST API."""


def sql_str(s):
    """A SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def events_table(args):
    """The source table: the feeder, one split (connection) per source partition, the event
    time as the rowtime, and the watermark of the engine's out-of-orderness."""
    return f"""CREATE TEMPORARY TABLE events ({TRACE_COLUMNS},
    event_ts AS TO_TIMESTAMP_LTZ(event_time_ms, 3),
    WATERMARK FOR event_ts AS {WATERMARK}
) WITH (
    'connector' = 'streamlab-feed',
    'feeder' = {sql_str(args.feeder)},
    'token' = {sql_str(args.token)},
    'partitions' = '{args.partitions}'
)"""


def receiver_table(args):
    """The sink table: streamlab's receiver, one CSV line per row. One sink subtask, as the
    per-record engine has one sink: the rows reach it through a network exchange (where the
    buffer timeout applies), not chained into every source subtask."""
    return f"""CREATE TEMPORARY TABLE receiver ({SINK_COLUMNS}
) WITH (
    'connector' = 'streamlab-receiver',
    'receiver' = {sql_str(args.receiver)},
    'token' = {sql_str(args.token)},
    'sink.parallelism' = '1'
)"""


def free_port():
    """A TCP port free on loopback now, for the local cluster's REST endpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_url(path):
    return pathlib.Path(path).resolve().as_uri()


def configuration(args):
    """FLINK_CONF plus what depends on the run: the helper jar, the checkpoint directory, the
    cluster (a remote JobManager, or a local MiniCluster whose REST endpoint listens on a free
    loopback port so its checkpoint statistics can be read). A local cluster keeps its files
    beside the checkpoint directory, in the run's directory: its JVM's log in flink-log (unless
    FLINK_LOG_DIR says otherwise) and its temporary files, RocksDB's working state among them, in
    flink-tmp. Returns (configuration, REST base URL)."""
    conf = dict(FLINK_CONF)
    conf["pipeline.jars"] = file_url(args.jar)
    checkpoint = pathlib.Path(args.checkpoint).resolve()
    conf["execution.checkpointing.dir"] = checkpoint.as_uri()
    if conf.get("state.changelog.enabled") == "true":
        conf["state.changelog.dstl.dfs.base-path"] = (checkpoint / "changelog").as_uri()
    if args.master:
        host, port = args.master.rsplit(":", 1)
        conf["execution.target"] = "remote"
        conf["rest.address"] = host
        conf["rest.port"] = port
    else:
        os.environ.setdefault("FLINK_LOG_DIR", str(checkpoint.parent / "flink-log"))
        tmp = checkpoint.parent / "flink-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        conf["io.tmp.dirs"] = str(tmp)
        host, port = "127.0.0.1", str(free_port())
        conf["rest.address"] = host
        conf["rest.bind-address"] = host
        conf["rest.port"] = port
        conf["rest.bind-port"] = port
    config = Configuration()
    for key, value in conf.items():
        config.set_string(key, value)
    return config, f"http://{host}:{port}"


class CheckpointLog(threading.Thread):
    """Appends each completed checkpoint's statistics, as Flink's REST API reports it
    (`/jobs/<id>/checkpoints`, one entry of its `history`), to the progress file, one JSON line
    each: Flink's own measurements for `progress.jsonl`. Polled every PROGRESS_POLL_S; a
    checkpoint that completes in the last moments of a local job, after its MiniCluster has shut
    down, is missed."""

    def __init__(self, rest, job_id, path):
        super().__init__(name="checkpoint-log", daemon=True)
        self._url = f"{rest}/jobs/{job_id}/checkpoints"
        self._out = open(path, "a", encoding="utf-8")
        self._seen = set()
        self._halt = threading.Event()

    def poll(self):
        try:
            with urllib.request.urlopen(self._url, timeout=2) as r:
                stats = json.load(r)
        except (OSError, ValueError):
            return
        for entry in sorted(stats.get("history", []), key=lambda e: e.get("id", 0)):
            if entry.get("status") == "COMPLETED" and entry.get("id") not in self._seen:
                self._seen.add(entry.get("id"))
                self._out.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._out.flush()

    def run(self):
        while not self._halt.wait(PROGRESS_POLL_S):
            self.poll()

    def stop(self):
        self._halt.set()
        self.join()
        self.poll()
        self._out.close()


def arguments():
    """The run's connection details: everything the scenario does not fix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeder", required=True, help="the feeder's host:port")
    parser.add_argument("--receiver", required=True, help="the receiver's host:port")
    parser.add_argument("--token", required=True, help="the run's token")
    parser.add_argument("--partitions", required=True, type=int, help="source partitions")
    parser.add_argument("--campaigns", required=True, help="the campaign table: CSV ad,campaign")
    parser.add_argument("--progress", required=True, help="file each completed checkpoint is appended to")
    parser.add_argument("--checkpoint", required=True, help="the job's checkpoint directory")
    parser.add_argument("--master", default=None, help="a JobManager's REST host:port (default: a local MiniCluster)")
    parser.add_argument(
        "--jar", required=True, help="streamlab's helper jar (`streamlab engines install` builds it)"
    )
    return parser.parse_args()


def main():
    args = arguments()
    start_lifeline()
    config, rest = configuration(args)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    t_env = TableEnvironment.create(settings)
    jvm = get_gateway().jvm
    t_env._j_tenv.createTemporarySystemFunction(
        "campaign_of", jvm.streamlab.flink.CampaignLookup.fromCsv(str(pathlib.Path(args.campaigns).resolve()))
    )
    t_env.execute_sql(events_table(args))
    t_env.execute_sql(receiver_table(args))
    for statement in PIPELINE:
        t_env.execute_sql(statement)
    result = t_env.execute_sql(INSERT)
    job_id = result.get_job_client().get_job_id()
    print(f"streamlab: Flink job {job_id} submitted; REST API at {rest}", file=sys.stderr, flush=True)
    progress = CheckpointLog(rest, job_id, args.progress)
    progress.start()
    # The sources are bounded: the job ends by itself once every partition has sent END and the
    # final watermark has fired every window.
    try:
        result.wait()
    finally:
        progress.stop()


if __name__ == "__main__":
    main()
