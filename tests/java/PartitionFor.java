// For each line of stdin ("<partitions> <base64 key>"), the partition Kafka's Java producer picks for that
// key: BuiltInPartitioner.partitionForKey, what the default partitioner does with every keyed record.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Base64;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class PartitionFor {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            String[] parts = line.split(" ", 2);
            int partitions = Integer.parseInt(parts[0]);
            byte[] key = Base64.getDecoder().decode(parts.length > 1 ? parts[1] : "");
            out.append(BuiltInPartitioner.partitionForKey(key, partitions)).append('\n');
        }
        System.out.print(out);
    }
}
