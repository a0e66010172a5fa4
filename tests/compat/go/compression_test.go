package compat

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzCompression: franz-go produces batches with each codec (none,
// gzip, snappy, lz4, zstd), one partition per codec; a consumer reads every
// record back intact and in order.
func TestFranzCompression(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	topic := uniq("franz-codec")
	createTopic(t, topic, int32(len(codecs)))
	big := strings.Repeat("compressible payload ", 200)
	for i, c := range codecs {
		cl := newFranz(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(50*time.Millisecond))
		var recs []*kgo.Record
		for j := 0; j < 20; j++ {
			recs = append(recs, &kgo.Record{Partition: int32(i), Key: []byte(fmt.Sprintf("%s-%d", c.name, j)), Value: []byte(fmt.Sprintf("%s %d %s", c.name, j, big))})
		}
		if err := cl.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce with %s: %v", c.name, err)
		}
	}
	cons := newFranz(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := pollN(t, cons, 20*len(codecs))
	next := map[int32]int64{}
	for _, r := range got {
		c := codecs[r.Partition].name
		j := next[r.Partition]
		if r.Offset != j || string(r.Key) != fmt.Sprintf("%s-%d", c, j) || string(r.Value) != fmt.Sprintf("%s %d %s", c, j, big) {
			t.Fatalf("partition %d (%s): offset %d key %q value %.40q..., want record %d", r.Partition, c, r.Offset, r.Key, r.Value, j)
		}
		next[r.Partition]++
	}
	for i := range codecs {
		if next[int32(i)] != 20 {
			t.Fatalf("partition %d (%s): read %d records, want 20", i, codecs[i].name, next[int32(i)])
		}
	}
}

// TestSaramaCompression: sarama's SyncProducer (WaitForAll) sends with each
// codec; a sarama partition consumer reads every record back.
func TestSaramaCompression(t *testing.T) {
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	topic := uniq("sarama-codec")
	createTopic(t, topic, int32(len(codecs)))
	big := strings.Repeat("compressible payload ", 200)
	for i, codec := range codecs {
		cfg := saramaConfig()
		cfg.Producer.Compression = codec
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		p, err := sarama.NewSyncProducer([]string{bootstrap()}, cfg)
		if err != nil {
			t.Fatalf("NewSyncProducer: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for j := 0; j < 10; j++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i), Value: sarama.StringEncoder(fmt.Sprintf("%s %d %s", codec, j, big))})
		}
		err = p.SendMessages(msgs)
		p.Close()
		if err != nil {
			t.Fatalf("SendMessages with %s: %v", codec, err)
		}
	}
	c, err := sarama.NewConsumer([]string{bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()
	for i, codec := range codecs {
		pc, err := c.ConsumePartition(topic, int32(i), sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition: %v", err)
		}
		timeout := time.After(opTimeout())
		for j := int64(0); j < 10; j++ {
			select {
			case m := <-pc.Messages():
				if m.Offset != j || string(m.Value) != fmt.Sprintf("%s %d %s", codec, j, big) {
					pc.Close()
					t.Fatalf("partition %d (%s): offset %d value %.40q..., want record %d", i, codec, m.Offset, m.Value, j)
				}
			case err := <-pc.Errors():
				pc.Close()
				t.Fatalf("partition %d (%s): %v", i, codec, err)
			case <-timeout:
				pc.Close()
				t.Fatalf("partition %d (%s): record %d did not arrive in time", i, codec, j)
			}
		}
		pc.Close()
	}
}
