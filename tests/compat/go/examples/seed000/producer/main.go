// Seed 000's Go producer (segmentio/kafka-go), as written in the seed
// (/work/shared/seeds/000_ea0b8f5145d42c5b.txt, "Producer (producer.go)").
//
// The only change from the seed: the broker address "localhost:9092" is read
// from the environment variable KASKADE_BOOTSTRAP (default localhost:9092), so
// the compatibility suite can point it at Kaskade or at Apache Kafka.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/segmentio/kafka-go"
)

// bootstrap is the seed's "localhost:9092", overridable with KASKADE_BOOTSTRAP.
func bootstrap() string {
	if b := os.Getenv("KASKADE_BOOTSTRAP"); b != "" {
		return b
	}
	return "localhost:9092"
}

func main() {
	w := &kafka.Writer{
		Addr:         kafka.TCP(bootstrap()),
		Topic:        "orders",
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
	}
	defer w.Close()

	var msgs []kafka.Message
	for i := 1; i <= 3; i++ {
		msgs = append(msgs, kafka.Message{
			Key:   []byte(fmt.Sprintf("customer-%d", i)),
			Value: []byte(fmt.Sprintf(`{"orderId":%d,"amount":%d}`, i, i*10)),
		})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		panic(err)
	}
	fmt.Println("sent 3 messages")
}
