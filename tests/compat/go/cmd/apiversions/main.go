// Command apiversions prints the API keys and version ranges a broker
// advertises (ApiVersions), to compare Kaskade with Apache Kafka:
//
//	go run ./cmd/apiversions 127.0.0.1:9092
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	addr := "localhost:9092"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, k := range resp.ApiKeys {
		fmt.Printf("%3d %-32s v%d-v%d\n", k.ApiKey, kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion)
	}
}
