package streamlab.flink;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.table.data.RowData;

/**
 * The feeder as a FLIP-27 source (Flink 2 keeps the old SourceFunction only as legacy): bounded,
 * one split per source partition, split p read by subtask p mod parallelism — the per-record
 * engine's assignment — so each partition has its own connection and its own watermark.
 */
final class FeedSource implements Source<RowData, FeedSplit, List<FeedSplit>>, ResultTypeQueryable<RowData> {
    private final String feeder;
    private final String token;
    private final int partitions;
    private final TypeInformation<RowData> type;

    FeedSource(String feeder, String token, int partitions, TypeInformation<RowData> type) {
        this.feeder = feeder;
        this.token = token;
        this.partitions = partitions;
        this.type = type;
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.BOUNDED;
    }

    @Override
    public SourceReader<RowData, FeedSplit> createReader(SourceReaderContext context) {
        return new FeedReader(feeder, token);
    }

    @Override
    public SplitEnumerator<FeedSplit, List<FeedSplit>> createEnumerator(SplitEnumeratorContext<FeedSplit> context) {
        List<FeedSplit> splits = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            splits.add(new FeedSplit(p));
        }
        return new FeedEnumerator(context, splits);
    }

    @Override
    public SplitEnumerator<FeedSplit, List<FeedSplit>> restoreEnumerator(
            SplitEnumeratorContext<FeedSplit> context, List<FeedSplit> pending) {
        return new FeedEnumerator(context, new ArrayList<>(pending));
    }

    @Override
    public SimpleVersionedSerializer<FeedSplit> getSplitSerializer() {
        return new FeedSplit.Serializer();
    }

    @Override
    public SimpleVersionedSerializer<List<FeedSplit>> getEnumeratorCheckpointSerializer() {
        return new FeedSplit.ListSerializer();
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return type;
    }
}
