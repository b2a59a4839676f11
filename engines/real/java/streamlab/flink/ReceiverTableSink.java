package streamlab.flink;

import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;
import org.apache.flink.table.types.logical.LogicalType;

/**
 * The receiver as an insert-only table sink: streamlab's window rows are final results
 * (is_update false), so a query that would send updates or retractions is refused by the
 * planner rather than sent half-understood.
 */
final class ReceiverTableSink implements DynamicTableSink {
    private final String receiver;
    private final String token;
    private final LogicalType[] types;
    /** The sink's parallelism ({@code sink.parallelism}); null: the job's. */
    private final Integer parallelism;

    ReceiverTableSink(String receiver, String token, LogicalType[] types, Integer parallelism) {
        this.receiver = receiver;
        this.token = token;
        this.types = types;
        this.parallelism = parallelism;
    }

    @Override
    public ChangelogMode getChangelogMode(ChangelogMode requested) {
        return ChangelogMode.insertOnly();
    }

    @Override
    public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
        return SinkV2Provider.of(new ReceiverSink(receiver, token, types), parallelism);
    }

    @Override
    public DynamicTableSink copy() {
        return new ReceiverTableSink(receiver, token, types, parallelism);
    }

    @Override
    public String asSummaryString() {
        return "streamlab-receiver";
    }
}
