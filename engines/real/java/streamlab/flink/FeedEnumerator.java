package streamlab.flink;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;

/**
 * Hands split p to subtask p mod parallelism when that subtask registers, then tells it there
 * are no more: a subtask with no partition finishes at once (a finished input holds no
 * watermark back), the others when their partitions have sent END.
 */
final class FeedEnumerator implements SplitEnumerator<FeedSplit, List<FeedSplit>> {
    private final SplitEnumeratorContext<FeedSplit> context;
    private final List<FeedSplit> pending;

    FeedEnumerator(SplitEnumeratorContext<FeedSplit> context, List<FeedSplit> pending) {
        this.context = context;
        this.pending = pending;
    }

    @Override
    public void start() {}

    @Override
    public void handleSplitRequest(int subtask, String requesterHostname) {}

    @Override
    public void addSplitsBack(List<FeedSplit> splits, int subtask) {
        pending.addAll(splits);
    }

    @Override
    public void addReader(int subtask) {
        int parallelism = context.currentParallelism();
        Iterator<FeedSplit> it = pending.iterator();
        while (it.hasNext()) {
            FeedSplit split = it.next();
            if (split.partition % parallelism == subtask) {
                context.assignSplit(split, subtask);
                it.remove();
            }
        }
        context.signalNoMoreSplits(subtask);
    }

    @Override
    public List<FeedSplit> snapshotState(long checkpointId) {
        return new ArrayList<>(pending);
    }

    @Override
    public void close() {}
}
