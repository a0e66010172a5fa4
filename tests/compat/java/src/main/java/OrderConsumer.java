// Seed 000's Java consumer, copied verbatim from the tutorial
// (shared/seeds/000_ea0b8f5145d42c5b.txt, "Java (Official Kafka Client)").
// The ONLY change: the bootstrap address "localhost:9092" is read from the
// environment variable KASKADE_BOOTSTRAP, with "localhost:9092" as the default.
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.serialization.StringDeserializer;

public class OrderConsumer {
  public static void main(String[] args) {
    var props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv().getOrDefault("KASKADE_BOOTSTRAP", "localhost:9092"));
    props.put(ConsumerConfig.GROUP_ID_CONFIG, "example-consumer");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");

    try (var consumer = new KafkaConsumer<String, String>(props)) {
      consumer.subscribe(List.of("orders"));
      while (true) {
        var records = consumer.poll(Duration.ofMillis(500));
        for (var rec : records) {
          System.out.printf("received key=%s value=%s partition=%d offset=%d%n",
            rec.key(), rec.value(), rec.partition(), rec.offset());
        }
      }
    }
  }
}
