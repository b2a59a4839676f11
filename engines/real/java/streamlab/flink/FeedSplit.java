package streamlab.flink;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * One source partition of the feeder: one connection, opened by the reader it is assigned to.
 * A split holds no position: the feeder's stream cannot be replayed, so a split is read once,
 * from its start.
 */
final class FeedSplit implements SourceSplit {
    final int partition;

    FeedSplit(int partition) {
        this.partition = partition;
    }

    @Override
    public String splitId() {
        return "p" + partition;
    }

    /** A split as its partition number. */
    static final class Serializer implements SimpleVersionedSerializer<FeedSplit> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(FeedSplit split) {
            return ByteBuffer.allocate(4).putInt(split.partition).array();
        }

        @Override
        public FeedSplit deserialize(int version, byte[] bytes) throws IOException {
            return new FeedSplit(ByteBuffer.wrap(bytes).getInt());
        }
    }

    /** The enumerator's state, the splits not assigned yet, as their partition numbers. */
    static final class ListSerializer implements SimpleVersionedSerializer<List<FeedSplit>> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(List<FeedSplit> splits) {
            ByteBuffer buf = ByteBuffer.allocate(4 + 4 * splits.size()).putInt(splits.size());
            for (FeedSplit s : splits) {
                buf.putInt(s.partition);
            }
            return buf.array();
        }

        @Override
        public List<FeedSplit> deserialize(int version, byte[] bytes) throws IOException {
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            int n = buf.getInt();
            List<FeedSplit> splits = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                splits.add(new FeedSplit(buf.getInt()));
            }
            return splits;
        }
    }
}
