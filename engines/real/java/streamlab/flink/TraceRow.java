package streamlab.flink;

import java.util.List;

import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * streamlab's trace row (workloads/src/trace/mod.rs COLUMNS): CSV, no header, no quoting, one
 * event per line, parsed by position into the row the {@code streamlab-feed} table declares.
 */
final class TraceRow {
    static final List<String> COLUMNS = List.of(
            "seq", "event_time_ms", "arrival_ns", "partition", "user", "session", "page", "ad", "kind",
            "dwell_ms", "price_cents");

    static final List<LogicalTypeRoot> TYPES = List.of(
            LogicalTypeRoot.BIGINT, LogicalTypeRoot.BIGINT, LogicalTypeRoot.BIGINT, LogicalTypeRoot.INTEGER,
            LogicalTypeRoot.BIGINT, LogicalTypeRoot.BIGINT, LogicalTypeRoot.BIGINT, LogicalTypeRoot.BIGINT,
            LogicalTypeRoot.VARCHAR, LogicalTypeRoot.BIGINT, LogicalTypeRoot.BIGINT);

    private TraceRow() {}

    /** The row of one trace line; an unreadable line is an error naming it. */
    static RowData parse(String line) {
        String[] f = line.split(",", -1);
        if (f.length != COLUMNS.size()) {
            throw new IllegalArgumentException(
                    "streamlab-feed: a trace row has " + COLUMNS.size() + " fields, this one " + f.length + ": " + line);
        }
        GenericRowData row = new GenericRowData(COLUMNS.size());
        for (int i = 0; i < f.length; i++) {
            switch (TYPES.get(i)) {
                case BIGINT:
                    row.setField(i, Long.parseLong(f[i]));
                    break;
                case INTEGER:
                    row.setField(i, Integer.parseInt(f[i]));
                    break;
                default:
                    row.setField(i, StringData.fromString(f[i]));
            }
        }
        return row;
    }
}
