// Parse each file named on the command line with the Java models Modelina generated from the AsyncAPI document
// (Jackson preset), as a counterpart's Java system would: one line per file, "<class> <the model written back as
// JSON>", or "FAIL <file>: <why>"; exit 1 when any failed.
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import java.nio.file.Files;
import java.nio.file.Path;
import org.launchrelay.model.InboundMessage;

public class ParseMessages {
  public static void main(String[] args) throws Exception {
    ObjectMapper mapper = new ObjectMapper().registerModule(new JavaTimeModule())
        .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, true)
        .configure(DeserializationFeature.ADJUST_DATES_TO_CONTEXT_TIME_ZONE, false)
        .configure(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS, false)
        .setSerializationInclusion(JsonInclude.Include.NON_NULL);
    int failed = 0;
    for (String file : args) {
      try {
        Object message = mapper.readValue(Files.readAllBytes(Path.of(file)), InboundMessage.class);
        System.out.println(message.getClass().getSimpleName() + " " + mapper.writeValueAsString(message));
      } catch (Exception e) {
        failed++;
        System.out.println("FAIL " + file + ": " + String.valueOf(e.getMessage()).split("\n")[0]);
      }
    }
    System.exit(failed == 0 ? 0 : 1);
  }
}
