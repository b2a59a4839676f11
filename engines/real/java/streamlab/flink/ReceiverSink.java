package streamlab.flink;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.LogicalType;

/**
 * Sends rows to streamlab's receiver: one connection per sink subtask, opened with
 * {@code STREAMLAB <token> sink}, then one CSV line per row, flushed at once — the receiver
 * stamps a row on receipt and that stamp is its latency's end, so a row must not wait in a
 * buffer for the next one. At-least-once: rows sent before a failure stay sent.
 */
final class ReceiverSink implements Sink<RowData> {
    private final String receiver;
    private final String token;
    private final LogicalType[] types;

    ReceiverSink(String receiver, String token, LogicalType[] types) {
        this.receiver = receiver;
        this.token = token;
        this.types = types;
    }

    @Override
    public SinkWriter<RowData> createWriter(WriterInitContext context) throws IOException {
        return new Writer();
    }

    private final class Writer implements SinkWriter<RowData> {
        private final Socket socket;
        private final OutputStream out;
        private final StringBuilder line = new StringBuilder(128);

        Writer() throws IOException {
            int colon = receiver.lastIndexOf(':');
            socket = new Socket(receiver.substring(0, colon), Integer.parseInt(receiver.substring(colon + 1)));
            socket.setTcpNoDelay(true);
            out = new BufferedOutputStream(socket.getOutputStream(), 1 << 14);
            out.write(("STREAMLAB " + token + " sink\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
        }

        @Override
        public void write(RowData row, Context context) throws IOException {
            line.setLength(0);
            CsvCell.appendRow(line, row, types);
            line.append('\n');
            out.write(line.toString().getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            out.flush();
        }

        @Override
        public void close() throws IOException {
            try {
                out.flush();
            } finally {
                socket.close();
            }
        }
    }
}
