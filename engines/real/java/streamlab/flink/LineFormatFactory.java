package streamlab.flink;

import java.nio.charset.StandardCharsets;
import java.util.Set;

import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.EncodingFormat;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.SerializationFormatFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;

/**
 * The {@code 'format' = 'streamlab-line'} value format: a row as the receiver's CSV line (no
 * newline), cell by cell as {@link CsvCell} writes them, so a result read from a Kafka output
 * topic is the same text the loopback receiver gets. Insert-only: window results are final.
 */
public final class LineFormatFactory implements SerializationFormatFactory {
    @Override
    public String factoryIdentifier() {
        return "streamlab-line";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of();
    }

    @Override
    public EncodingFormat<SerializationSchema<RowData>> createEncodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        return new EncodingFormat<SerializationSchema<RowData>>() {
            @Override
            public SerializationSchema<RowData> createRuntimeEncoder(DynamicTableSink.Context ctx, DataType row) {
                LogicalType[] types = DataType.getFieldDataTypes(row).stream()
                        .map(DataType::getLogicalType)
                        .toArray(LogicalType[]::new);
                for (LogicalType t : types) {
                    CsvCell.check(t);
                }
                return new LineSchema(types);
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    /** One row to one line's bytes (UTF-8). */
    static final class LineSchema implements SerializationSchema<RowData> {
        private final LogicalType[] types;
        private transient StringBuilder line;

        LineSchema(LogicalType[] types) {
            this.types = types;
        }

        @Override
        public byte[] serialize(RowData row) {
            if (line == null) {
                line = new StringBuilder(128);
            }
            line.setLength(0);
            CsvCell.appendRow(line, row, types);
            return line.toString().getBytes(StandardCharsets.UTF_8);
        }
    }
}
