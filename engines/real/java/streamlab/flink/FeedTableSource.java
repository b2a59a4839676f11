package streamlab.flink;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.ProviderContext;
import org.apache.flink.table.connector.source.DataStreamScanProvider;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.abilities.SupportsWatermarkPushDown;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.DataType;

/**
 * The feeder as a bounded, insert-only scan. It accepts the table's WATERMARK (pushed down by
 * the planner) so that watermarks are generated per split, i.e. per source partition, and the
 * source's watermark is the minimum over its splits — as Flink's Kafka source does, and as
 * streamlab's per-record engine models it. Without the push-down, the planner would put one
 * watermark assigner after the source and a fast partition could make a slow one's rows late.
 */
final class FeedTableSource implements ScanTableSource, SupportsWatermarkPushDown {
    private final String feeder;
    private final String token;
    private final int partitions;
    private final DataType row;
    private WatermarkStrategy<RowData> watermarks = WatermarkStrategy.noWatermarks();

    FeedTableSource(String feeder, String token, int partitions, DataType row) {
        this.feeder = feeder;
        this.token = token;
        this.partitions = partitions;
        this.row = row;
    }

    @Override
    public ChangelogMode getChangelogMode() {
        return ChangelogMode.insertOnly();
    }

    @Override
    public void applyWatermark(WatermarkStrategy<RowData> strategy) {
        this.watermarks = strategy;
    }

    @Override
    public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
        TypeInformation<RowData> type = context.createTypeInformation(row);
        FeedSource source = new FeedSource(feeder, token, partitions, type);
        WatermarkStrategy<RowData> strategy = watermarks;
        return new DataStreamScanProvider() {
            @Override
            public DataStream<RowData> produceDataStream(ProviderContext provider, StreamExecutionEnvironment env) {
                return env.fromSource(source, strategy, "streamlab-feed");
            }

            @Override
            public boolean isBounded() {
                return true;
            }
        };
    }

    @Override
    public DynamicTableSource copy() {
        FeedTableSource copy = new FeedTableSource(feeder, token, partitions, row);
        copy.watermarks = watermarks;
        return copy;
    }

    @Override
    public String asSummaryString() {
        return "streamlab-feed";
    }
}
