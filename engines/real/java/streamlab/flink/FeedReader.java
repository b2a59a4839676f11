package streamlab.flink;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;

import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.SourceOutput;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.table.data.RowData;

/**
 * Reads the feeder's connections of one source subtask: a thread per split reads its socket
 * line by line into a bounded queue (full, it stops reading, so TCP pushes back on the feeder
 * as it would on a slow Flink source); the task's mailbox thread parses the lines and emits each
 * row through its split's own output, so the pushed-down watermark strategy runs per split.
 *
 * <p>A split ends at the line {@code END}; end of file before it fails the job (the feeder
 * refuses a handshake by closing the connection without a byte). The reader reports
 * END_OF_INPUT once it has no more splits to expect and every one of its splits has ended.
 */
final class FeedReader implements SourceReader<RowData, FeedSplit> {
    private static final int QUEUE_LINES = 4096;
    private static final String END = "END";

    /** A line of a split, or (text null) the end of the split. */
    private static final class Line {
        final String split;
        final String text;

        Line(String split, String text) {
            this.split = split;
            this.text = text;
        }
    }

    private final String host;
    private final int port;
    private final String token;
    private final BlockingQueue<Line> queue = new ArrayBlockingQueue<>(QUEUE_LINES);
    private final Map<String, SourceOutput<RowData>> outputs = new HashMap<>();
    private final List<Socket> sockets = new ArrayList<>();
    private final List<FeedSplit> open = new ArrayList<>();
    private CompletableFuture<Void> available = new CompletableFuture<>();
    private boolean noMoreSplits;
    private volatile Throwable failure;

    FeedReader(String feeder, String token) {
        int colon = feeder.lastIndexOf(':');
        this.host = feeder.substring(0, colon);
        this.port = Integer.parseInt(feeder.substring(colon + 1));
        this.token = token;
    }

    @Override
    public void start() {}

    @Override
    public void addSplits(List<FeedSplit> splits) {
        for (FeedSplit split : splits) {
            synchronized (this) {
                open.add(split);
            }
            Thread t = new Thread(() -> read(split), "streamlab-feed-" + split.splitId());
            t.setDaemon(true);
            t.start();
        }
    }

    private void read(FeedSplit split) {
        String id = split.splitId();
        try {
            Socket socket = new Socket();
            synchronized (sockets) {
                sockets.add(socket);
            }
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port));
            OutputStream out = socket.getOutputStream();
            out.write(("STREAMLAB " + token + " " + split.partition + "\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8), 1 << 16)) {
                String line;
                boolean ended = false;
                while (!ended && (line = in.readLine()) != null) {
                    ended = line.equals(END);
                    if (!ended && !line.isEmpty()) {
                        put(new Line(id, line));
                    }
                }
                if (!ended) {
                    throw new IOException("the feeder closed the connection before END: a refused handshake "
                            + "(another run's token, a partition the run does not have or already connected, "
                            + "a schedule already started) or a feeder that stopped");
                }
            }
        } catch (IOException e) {
            failure = new IOException(
                    "streamlab-feed: partition " + split.partition + " of " + host + ":" + port + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        try {
            put(new Line(id, null));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void put(Line line) throws InterruptedException {
        queue.put(line);
        synchronized (this) {
            available.complete(null);
        }
    }

    @Override
    public InputStatus pollNext(ReaderOutput<RowData> output) throws Exception {
        if (failure != null) {
            throw new IOException(failure.getMessage(), failure);
        }
        Line line = queue.poll();
        if (line == null) {
            synchronized (this) {
                if (noMoreSplits && open.isEmpty()) {
                    return InputStatus.END_OF_INPUT;
                }
                if (queue.isEmpty() && available.isDone()) {
                    available = new CompletableFuture<>();
                }
            }
            return InputStatus.NOTHING_AVAILABLE;
        }
        if (line.text == null) {
            output.releaseOutputForSplit(line.split);
            outputs.remove(line.split);
            synchronized (this) {
                open.removeIf(s -> s.splitId().equals(line.split));
            }
            return InputStatus.MORE_AVAILABLE;
        }
        SourceOutput<RowData> split = outputs.computeIfAbsent(line.split, output::createOutputForSplit);
        split.collect(TraceRow.parse(line.text));
        return InputStatus.MORE_AVAILABLE;
    }

    @Override
    public synchronized CompletableFuture<Void> isAvailable() {
        return available;
    }

    @Override
    public synchronized void notifyNoMoreSplits() {
        noMoreSplits = true;
        available.complete(null);
    }

    @Override
    public synchronized List<FeedSplit> snapshotState(long checkpointId) {
        return new ArrayList<>(open);
    }

    @Override
    public void close() throws Exception {
        synchronized (sockets) {
            for (Socket s : sockets) {
                s.close();
            }
        }
    }
}
