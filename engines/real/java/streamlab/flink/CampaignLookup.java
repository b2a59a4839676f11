package streamlab.flink;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.HashMap;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;

/**
 * The lookup join of an ad against the campaign table, as a table function:
 * {@code FROM events, LATERAL TABLE(campaign_of(ad)) AS c(campaign)} yields one row with the
 * ad's campaign, or none for an ad not in the table (an inner join). Unlike a regular streaming
 * join it keeps the event's time attribute (the window downstream still sees the rowtime) and
 * holds no state: the table travels inside the function, read once on the client from the
 * campaign file (CSV, header {@code ad,campaign}), so a remote cluster needs no access to it.
 */
@FunctionHint(output = @DataTypeHint("ROW<campaign BIGINT>"))
public final class CampaignLookup extends TableFunction<org.apache.flink.types.Row> {
    private static final long serialVersionUID = 1L;

    private final HashMap<Long, Long> campaigns;

    private CampaignLookup(HashMap<Long, Long> campaigns) {
        this.campaigns = campaigns;
    }

    /** The table of a campaign file; an unreadable line is an error naming the file and line. */
    public static CampaignLookup fromCsv(String path) throws IOException {
        HashMap<Long, Long> campaigns = new HashMap<>();
        try (BufferedReader in = Files.newBufferedReader(Paths.get(path), StandardCharsets.UTF_8)) {
            String header = in.readLine();
            if (header == null || !header.trim().equals("ad,campaign")) {
                throw new IOException(path + ": the first line must be the header `ad,campaign`, found " + header);
            }
            String line;
            int n = 1;
            while ((line = in.readLine()) != null) {
                n++;
                if (line.isEmpty()) {
                    continue;
                }
                String[] f = line.split(",");
                try {
                    campaigns.put(Long.parseLong(f[0].trim()), Long.parseLong(f[1].trim()));
                } catch (RuntimeException e) {
                    throw new IOException(path + " line " + n + ": expected `ad,campaign` (two integers), found " + line);
                }
            }
        }
        return new CampaignLookup(campaigns);
    }

    /** How many ads the table maps. */
    public int size() {
        return campaigns.size();
    }

    public void eval(Long ad) {
        Long campaign = ad == null ? null : campaigns.get(ad);
        if (campaign != null) {
            collect(org.apache.flink.types.Row.of(campaign));
        }
    }
}
