package streamlab.flink;

import java.util.List;
import java.util.Set;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;

/**
 * The {@code 'connector' = 'streamlab-receiver'} table: streamlab's receiver as a Flink SQL
 * sink. Options: {@code receiver} (host:port), {@code token}, and optionally {@code sink.parallelism}. Every row is one CSV line, its
 * columns in the table's order ({@link ReceiverSink}).
 */
public final class ReceiverTableFactory implements DynamicTableSinkFactory {
    static final ConfigOption<String> RECEIVER =
            ConfigOptions.key("receiver").stringType().noDefaultValue().withDescription("the receiver's host:port");

    @Override
    public String factoryIdentifier() {
        return "streamlab-receiver";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(RECEIVER, FeedTableFactory.TOKEN);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(FactoryUtil.SINK_PARALLELISM);
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validate();
        ReadableConfig options = helper.getOptions();
        DataType row = context.getCatalogTable().getResolvedSchema().toPhysicalRowDataType();
        LogicalType[] types = DataType.getFieldDataTypes(row).stream()
                .map(DataType::getLogicalType)
                .toArray(LogicalType[]::new);
        for (LogicalType t : types) {
            CsvCell.check(t);
        }
        return new ReceiverTableSink(
                options.get(RECEIVER),
                options.get(FeedTableFactory.TOKEN),
                types,
                options.getOptional(FactoryUtil.SINK_PARALLELISM).orElse(null));
    }
}
