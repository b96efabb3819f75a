// Structural check of Strimzi resources with Strimzi's own API model (io.strimzi:api):
// every document must bind to its class, and no field may be left over as an unknown property.
// Usage: java -cp 'LIBS/*' ValidateStrimzi.java resources.yaml
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import java.io.File;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

public class ValidateStrimzi {
    static final Map<String, String> KINDS = Map.of(
        "KafkaTopic", "io.strimzi.api.kafka.model.topic.KafkaTopic",
        "KafkaUser", "io.strimzi.api.kafka.model.user.KafkaUser");

    public static void main(String[] args) throws Exception {
        ObjectMapper mapper = new ObjectMapper(new YAMLFactory())
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
        List<String> problems = new ArrayList<>();
        int count = 0;
        YAMLParser parser = new YAMLFactory().createParser(new File(args[0]));
        for (JsonNode doc : mapper.readValues(parser, JsonNode.class).readAll()) {
            if (doc == null || doc.isNull()) continue;
            count++;
            String kind = doc.path("kind").asText();
            String name = kind + "/" + doc.path("metadata").path("name").asText();
            String cls = KINDS.get(kind);
            if (cls == null) { problems.add(name + ": unexpected kind"); continue; }
            if (!"kafka.strimzi.io/v1beta2".equals(doc.path("apiVersion").asText())) problems.add(name + ": apiVersion");
            try {
                Object bound = mapper.treeToValue(doc, Class.forName(cls));
                leftovers(bound, name, problems, new IdentityHashMap<>());
                JsonNode back = mapper.valueToTree(bound);
                if (!normal(back.path("spec")).equals(normal(doc.path("spec")))) problems.add(name + ": spec does not round-trip: " + back.path("spec"));
            } catch (Exception e) {
                problems.add(name + ": " + e.getMessage().split("\n")[0]);
            }
        }
        problems.forEach(System.out::println);
        System.out.println(count + " resources, " + problems.size() + " problems");
        System.exit(problems.isEmpty() && count > 0 ? 0 : 1);
    }

    // "literal" is the default pattern type; Strimzi leaves it out for some resource types when writing.
    static JsonNode normal(JsonNode node) {
        JsonNode copy = node.deepCopy();
        strip(copy);
        return copy;
    }

    static void strip(JsonNode node) {
        if (node instanceof com.fasterxml.jackson.databind.node.ObjectNode o) {
            if ("literal".equals(o.path("patternType").asText())) o.remove("patternType");
            o.elements().forEachRemaining(ValidateStrimzi::strip);
        } else if (node.isArray()) {
            node.elements().forEachRemaining(ValidateStrimzi::strip);
        }
    }

    // Strimzi keeps unknown fields in additionalProperties instead of failing: report any.
    static void leftovers(Object o, String where, List<String> problems, IdentityHashMap<Object, Boolean> seen) throws Exception {
        if (o == null || seen.containsKey(o)) return;
        seen.put(o, true);
        if (o instanceof Collection<?> c) { for (Object x : c) leftovers(x, where, problems, seen); return; }
        if (o instanceof Map<?, ?> m) { for (Object x : m.values()) leftovers(x, where, problems, seen); return; }
        if (!o.getClass().getName().startsWith("io.strimzi.")) return;
        for (Method m : o.getClass().getMethods()) {
            if (m.getParameterCount() != 0 || !m.getName().startsWith("get") || m.getName().equals("getClass")) continue;
            Object v = m.invoke(o);
            if (m.getName().equals("getAdditionalProperties") && v instanceof Map<?, ?> extra && !extra.isEmpty())
                problems.add(where + ": unknown fields " + extra.keySet() + " in " + o.getClass().getSimpleName());
            else leftovers(v, where, problems, seen);
        }
    }
}
