package compat

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// seed003Produce is seed 003's confluent-kafka-go producer snippet
// (/work/shared/seeds/003_6a555ed9961f15e8.txt, "Producers"), as written, but
// for the address: "localhost:9092" is bootstrap(), i.e. KASKADE_BOOTSTRAP
// (default localhost:9092). The snippet leaves `topic` to the reader; here it
// is the test's topic. Like the snippet it passes a nil delivery channel, so
// the delivery report arrives on producer.Events().
func seed003Produce(topic string) *kafka.Producer {
	// Go example using the confluent-kafka-go client
	producer, _ := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap(),
	})
	if producer == nil { // the snippet ignores the error; a nil producer would panic below
		return nil
	}
	producer.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{
			Topic:     &topic,
			Partition: kafka.PartitionAny,
		},
		Key:   []byte("user-123"),
		Value: []byte(`{"event": "signup", "plan": "pro"}`),
	}, nil)
	return producer
}

// nextDelivery waits for the next delivery report on the producer's Events().
func nextDelivery(t *testing.T, p *kafka.Producer) *kafka.Message {
	t.Helper()
	deadline := time.After(opTimeout())
	for {
		select {
		case ev := <-p.Events():
			switch e := ev.(type) {
			case *kafka.Message:
				return e
			case kafka.Error:
				t.Logf("producer event error: %v (code %v)", e, e.Code())
			default:
				t.Logf("producer event: %v", e)
			}
		case <-deadline:
			t.Fatalf("no delivery report within %v", opTimeout())
		}
	}
}

// TestSeed003ConfluentProducer runs seed 003's snippet, checks its delivery
// report, produces more keyed records (same key, same partition; offsets in
// order), and reads everything back with a confluent-kafka-go group consumer.
func TestSeed003ConfluentProducer(t *testing.T) {
	topic := uniq("seed003")
	createTopic(t, topic, 3)

	producer := seed003Produce(topic)
	if producer == nil {
		t.Fatal("kafka.NewProducer returned nil")
	}
	defer producer.Close()

	dr := nextDelivery(t, producer)
	if dr.TopicPartition.Error != nil {
		t.Fatalf("seed record not delivered: %v", dr.TopicPartition.Error)
	}
	if dr.TopicPartition.Topic == nil || *dr.TopicPartition.Topic != topic {
		t.Fatalf("delivery report topic %v, want %s", dr.TopicPartition.Topic, topic)
	}
	seedPart := dr.TopicPartition.Partition
	if seedPart < 0 || seedPart > 2 || dr.TopicPartition.Offset != 0 {
		t.Fatalf("seed record delivered at %d/%v, want offset 0 of partition 0..2", seedPart, dr.TopicPartition.Offset)
	}
	if string(dr.Key) != "user-123" || string(dr.Value) != `{"event": "signup", "plan": "pro"}` {
		t.Fatalf("delivery report carries key %q value %q", dr.Key, dr.Value)
	}

	// Five more records for user-123 with a delivery channel, plus two other keys.
	dc := make(chan kafka.Event, 16)
	type sent struct {
		key, value string
		part       int32
		off        kafka.Offset
	}
	var all []sent
	all = append(all, sent{"user-123", `{"event": "signup", "plan": "pro"}`, seedPart, 0})
	keys := []string{"user-123", "user-123", "user-456", "user-123", "user-789", "user-123", "user-123"}
	for i, k := range keys {
		v := fmt.Sprintf(`{"event": "click", "n": %d}`, i)
		err := producer.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(k),
			Value:          []byte(v),
			Headers:        []kafka.Header{{Key: "n", Value: []byte(fmt.Sprint(i))}},
		}, dc)
		if err != nil {
			t.Fatalf("Produce: %v", err)
		}
	}
	deadline := time.After(opTimeout())
	for range keys {
		select {
		case ev := <-dc:
			m, ok := ev.(*kafka.Message)
			if !ok {
				t.Fatalf("unexpected event on delivery channel: %v", ev)
			}
			if m.TopicPartition.Error != nil {
				t.Fatalf("delivery failed: %v", m.TopicPartition.Error)
			}
			all = append(all, sent{string(m.Key), string(m.Value), m.TopicPartition.Partition, m.TopicPartition.Offset})
		case <-deadline:
			t.Fatalf("delivery reports missing after %v", opTimeout())
		}
	}
	if left := producer.Flush(int(opTimeout() / time.Millisecond)); left != 0 {
		t.Fatalf("Flush left %d messages", left)
	}
	// Same key, same partition; per-partition offsets are 0..n-1 in send order.
	next := map[int32]kafka.Offset{}
	for _, s := range all {
		if s.key == "user-123" && s.part != seedPart {
			t.Fatalf("user-123 went to partition %d and %d", seedPart, s.part)
		}
		if s.off != next[s.part] {
			t.Fatalf("record %v: offset %d, want %d", s, s.off, next[s.part])
		}
		next[s.part]++
	}

	// Read back with a group consumer.
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap(),
		"group.id":           uniq("seed003-group"),
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
	})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()
	if err := c.SubscribeTopics([]string{topic}, nil); err != nil {
		t.Fatalf("SubscribeTopics: %v", err)
	}
	var got []sent
	end := time.Now().Add(opTimeout())
	for len(got) < len(all) && time.Now().Before(end) {
		m, err := c.ReadMessage(500 * time.Millisecond)
		if err != nil {
			if ke, ok := err.(kafka.Error); ok && ke.IsTimeout() {
				continue
			}
			t.Fatalf("ReadMessage: %v", err)
		}
		got = append(got, sent{string(m.Key), string(m.Value), m.TopicPartition.Partition, m.TopicPartition.Offset})
	}
	if len(got) != len(all) {
		t.Fatalf("consumer read %d of %d records: %v", len(got), len(all), got)
	}
	// Commit synchronously and read the committed offsets back.
	parts, err := c.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for _, p := range parts {
		if p.Error != nil {
			t.Fatalf("commit %v: %v", p, p.Error)
		}
	}
	committed, err := c.Committed([]kafka.TopicPartition{
		{Topic: &topic, Partition: seedPart},
	}, int(opTimeout()/time.Millisecond))
	if err != nil {
		t.Fatalf("Committed: %v", err)
	}
	if len(committed) != 1 || committed[0].Offset != next[seedPart] {
		t.Fatalf("committed %v, want offset %d on partition %d", committed, next[seedPart], seedPart)
	}
	key := func(s []sent) func(i, j int) bool {
		return func(i, j int) bool {
			if s[i].part != s[j].part {
				return s[i].part < s[j].part
			}
			return s[i].off < s[j].off
		}
	}
	sort.Slice(all, key(all))
	sort.Slice(got, key(got))
	for i := range all {
		if all[i] != got[i] {
			t.Fatalf("record %d: read %+v, produced %+v", i, got[i], all[i])
		}
	}
}
