// Seed 000's Go consumer (segmentio/kafka-go), as written in the seed
// (/work/shared/seeds/000_ea0b8f5145d42c5b.txt, "Consumer (consumer.go)").
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
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{bootstrap()},
		GroupID: "example-consumer",
		Topic:   "orders",
	})
	defer r.Close()

	for {
		m, err := r.ReadMessage(context.Background())
		if err != nil {
			panic(err)
		}
		fmt.Printf("received key=%s value=%s partition=%d offset=%d\n",
			string(m.Key), string(m.Value), m.Partition, m.Offset)
	}
}
