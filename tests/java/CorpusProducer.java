// A client that is not this project's: Kafka's own Java producer writes a corpus of records exactly as given.
// Usage: java -cp 'KAFKA_LIBS/*' CorpusProducer.java BOOTSTRAP CORPUS.jsonl
// Each line of the corpus is one record: {"topic", "partition", "key", "value", "headers", "compression"}, where
// key and value are base64 or null, headers is a list of [name, base64-or-null], and compression is one of
// none, gzip, snappy, lz4, zstd (one producer per codec, so each record's batch carries its own codec).
// Records are sent one at a time, each acknowledged before the next, so their order in a partition is the
// corpus's order. Prints "partition offset" for each record, in order.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class CorpusProducer {
    static byte[] bytes(JsonNode node) {
        return node == null || node.isNull() ? null : Base64.getDecoder().decode(node.asText());
    }

    public static void main(String[] args) throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        Map<String, KafkaProducer<byte[], byte[]>> producers = new HashMap<>();
        try {
            for (String line : Files.readAllLines(Path.of(args[1]))) {
                if (line.isBlank()) continue;
                JsonNode r = mapper.readTree(line);
                String codec = r.path("compression").asText("none");
                KafkaProducer<byte[], byte[]> producer = producers.computeIfAbsent(codec, c -> {
                    Properties p = new Properties();
                    p.put("bootstrap.servers", args[0]);
                    p.put("compression.type", c);
                    p.put("acks", "all");
                    p.put("enable.idempotence", "true");
                    p.put("max.request.size", "4194304");
                    p.put("linger.ms", "0");
                    return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
                });
                List<Header> headers = new ArrayList<>();
                for (JsonNode h : r.path("headers")) {
                    headers.add(new RecordHeader(h.get(0).asText(), bytes(h.get(1))));
                }
                ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(
                    r.get("topic").asText(), r.get("partition").asInt(), bytes(r.get("key")), bytes(r.get("value")),
                    headers);
                RecordMetadata meta = producer.send(record).get();
                System.out.println(meta.partition() + " " + meta.offset());
            }
        } finally {
            for (KafkaProducer<byte[], byte[]> p : producers.values()) p.close();
        }
    }
}
