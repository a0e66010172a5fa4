// Seed 000's Java producer, copied verbatim from the tutorial
// (shared/seeds/000_ea0b8f5145d42c5b.txt, "Java (Official Kafka Client)").
// The ONLY change: the bootstrap address "localhost:9092" is read from the
// environment variable KASKADE_BOOTSTRAP, with "localhost:9092" as the default.
import java.util.Properties;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringSerializer;

public class OrderProducer {
  public static void main(String[] args) throws Exception {
    var props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv().getOrDefault("KASKADE_BOOTSTRAP", "localhost:9092"));
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
    props.put(ProducerConfig.ACKS_CONFIG, "all");

    try (var producer = new KafkaProducer<String, String>(props)) {
      for (int i = 1; i <= 3; i++) {
        var record = new ProducerRecord<>(
          "orders",
          "customer-" + i,
          "{\"orderId\":" + i + ",\"amount\":" + (i * 10) + "}"
        );
        var md = producer.send(record).get();
        System.out.printf("sent to %s-%d@%d%n", md.topic(), md.partition(), md.offset());
      }
    }
  }
}
