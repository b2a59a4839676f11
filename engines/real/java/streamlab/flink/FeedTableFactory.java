package streamlab.flink;

import java.util.List;
import java.util.Set;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;

/**
 * The {@code 'connector' = 'streamlab-feed'} table: streamlab's feeder as a Flink SQL source.
 *
 * <p>Options: {@code feeder} (host:port), {@code token} (the run's), {@code partitions} (one
 * feeder connection, and one split, each). The table's physical columns must be the trace
 * columns of streamlab (workloads/src/trace/mod.rs COLUMNS), in order, with their types: the
 * rows are parsed by position ({@link TraceRow}). Computed columns and a WATERMARK may follow.
 */
public final class FeedTableFactory implements DynamicTableSourceFactory {
    static final ConfigOption<String> FEEDER =
            ConfigOptions.key("feeder").stringType().noDefaultValue().withDescription("the feeder's host:port");
    static final ConfigOption<String> TOKEN =
            ConfigOptions.key("token").stringType().noDefaultValue().withDescription("the run's token");
    static final ConfigOption<Integer> PARTITIONS =
            ConfigOptions.key("partitions").intType().noDefaultValue().withDescription("source partitions");

    @Override
    public String factoryIdentifier() {
        return "streamlab-feed";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(FEEDER, TOKEN, PARTITIONS);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of();
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validate();
        ReadableConfig options = helper.getOptions();
        DataType row = context.getCatalogTable().getResolvedSchema().toPhysicalRowDataType();
        List<String> names = DataType.getFieldNames(row);
        List<DataType> types = DataType.getFieldDataTypes(row);
        if (!names.equals(TraceRow.COLUMNS)) {
            throw new ValidationException(
                    "streamlab-feed: the physical columns must be " + TraceRow.COLUMNS + ", found " + names);
        }
        for (int i = 0; i < names.size(); i++) {
            LogicalType t = types.get(i).getLogicalType();
            if (t.getTypeRoot() != TraceRow.TYPES.get(i)) {
                throw new ValidationException(
                        "streamlab-feed: column " + names.get(i) + " must be " + TraceRow.TYPES.get(i) + ", found " + t);
            }
        }
        int partitions = options.get(PARTITIONS);
        if (partitions < 1) {
            throw new ValidationException("streamlab-feed: 'partitions' must be at least 1, found " + partitions);
        }
        return new FeedTableSource(options.get(FEEDER), options.get(TOKEN), partitions, row);
    }
}
