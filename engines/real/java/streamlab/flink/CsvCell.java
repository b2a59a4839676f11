package streamlab.flink;

import java.math.BigDecimal;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.TimestampType;

/**
 * One cell of a row sent to the receiver, written as streamlab writes it: integers and booleans
 * as Rust prints them, a timestamp (a window's bound) as epoch milliseconds, a double without a
 * trailing {@code .0} and never in exponent form (Rust's {@code {}}).
 */
final class CsvCell {
    private CsvCell() {}

    /** Refuses, at planning time, a column type the receiver's rows never have. */
    static void check(LogicalType t) {
        switch (t.getTypeRoot()) {
            case BIGINT:
            case INTEGER:
            case BOOLEAN:
            case DOUBLE:
            case VARCHAR:
            case TIMESTAMP_WITHOUT_TIME_ZONE:
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return;
            default:
                throw new ValidationException("streamlab-receiver: a column of type " + t + " cannot be sent; "
                        + "allowed: BIGINT, INT, BOOLEAN, DOUBLE, STRING, TIMESTAMP(3), TIMESTAMP_LTZ(3)");
        }
    }

    /** Appends a whole row: its cells in order, separated by commas, no newline. */
    static void appendRow(StringBuilder out, RowData row, LogicalType[] types) {
        for (int i = 0; i < types.length; i++) {
            if (i > 0) {
                out.append(',');
            }
            append(out, row, i, types[i]);
        }
    }

    static void append(StringBuilder out, RowData row, int i, LogicalType t) {
        if (row.isNullAt(i)) {
            return;
        }
        switch (t.getTypeRoot()) {
            case BIGINT:
                out.append(row.getLong(i));
                break;
            case INTEGER:
                out.append(row.getInt(i));
                break;
            case BOOLEAN:
                out.append(row.getBoolean(i));
                break;
            case DOUBLE:
                out.append(number(row.getDouble(i)));
                break;
            case TIMESTAMP_WITHOUT_TIME_ZONE:
                out.append(row.getTimestamp(i, ((TimestampType) t).getPrecision()).getMillisecond());
                break;
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                out.append(row.getTimestamp(i, ((LocalZonedTimestampType) t).getPrecision()).getMillisecond());
                break;
            default:
                out.append(row.getString(i).toString());
        }
    }

    static String number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            return v > 0 ? "inf" : v < 0 ? "-inf" : "NaN";
        }
        return new BigDecimal(Double.toString(v)).toPlainString();
    }
}
