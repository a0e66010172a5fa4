package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// TestSegmentioClientAPIs: segmentio/kafka-go's own protocol client (not the
// seed's programs): Client.CreateTopics with a config, Metadata,
// DescribeConfigs, a Writer with snappy compression to explicit partitions,
// a partition Reader (no group) from an offset, ListOffsets (first/last),
// OffsetCommit/OffsetFetch for a group without members, DeleteTopics.
func TestSegmentioClientAPIs(t *testing.T) {
	topic := uniq("segmentio")
	addr := kafkago.TCP(bootstrap())
	cl := &kafkago.Client{Addr: addr, Timeout: opTimeout()}

	ct, err := cl.CreateTopics(opCtx(t), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "600000"}},
	}}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if e := ct.Errors[topic]; e != nil {
		t.Fatalf("CreateTopics %s: %v", topic, e)
	}

	deadline := time.Now().Add(opTimeout())
	for {
		md, err := cl.Metadata(opCtx(t), &kafkago.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == 2 &&
			md.Topics[0].Partitions[0].Leader.Port > 0 && md.Topics[0].Partitions[1].Leader.Port > 0 {
			if md.ClusterID == "" || len(md.Brokers) == 0 {
				t.Fatalf("Metadata: cluster id %q, %d brokers", md.ClusterID, len(md.Brokers))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Metadata for %s: %v %+v", topic, err, md)
		}
		time.Sleep(100 * time.Millisecond)
	}

	dc, err := cl.DescribeConfigs(opCtx(t), &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatalf("DescribeConfigs: %v", err)
	}
	if len(dc.Resources) != 1 || dc.Resources[0].Error != nil {
		t.Fatalf("DescribeConfigs: %+v", dc.Resources)
	}
	found := false
	for _, e := range dc.Resources[0].ConfigEntries {
		if e.ConfigName == "retention.ms" {
			found = true
			if e.ConfigValue != "600000" {
				t.Fatalf("retention.ms = %q, want 600000", e.ConfigValue)
			}
		}
	}
	if !found {
		t.Fatalf("DescribeConfigs did not return retention.ms: %+v", dc.Resources[0].ConfigEntries)
	}

	// Writer: snappy, records routed by a balancer that honours Partition.
	w := &kafkago.Writer{
		Addr: addr, Topic: topic,
		Balancer:     kafkago.BalancerFunc(func(m kafkago.Message, _ ...int) int { return m.Partition }),
		RequiredAcks: kafkago.RequireAll,
		Compression:  compress.Snappy,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	var msgs []kafkago.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kafkago.Message{
			Partition: i % 2,
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(fmt.Sprintf("v%d", i)),
			Headers:   []kafkago.Header{{Key: "i", Value: []byte(fmt.Sprint(i))}},
		})
	}
	if err := w.WriteMessages(opCtx(t), msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}

	lo, err := cl.ListOffsets(opCtx(t), &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		topic: {kafkago.FirstOffsetOf(0), kafkago.LastOffsetOf(0), kafkago.FirstOffsetOf(1), kafkago.LastOffsetOf(1)},
	}})
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	for _, po := range lo.Topics[topic] {
		if po.Error != nil || po.FirstOffset != 0 || po.LastOffset != 5 {
			t.Fatalf("ListOffsets partition %d: first %d last %d err %v, want 0 and 5", po.Partition, po.FirstOffset, po.LastOffset, po.Error)
		}
	}
	if len(lo.Topics[topic]) != 2 {
		t.Fatalf("ListOffsets returned %d partitions", len(lo.Topics[topic]))
	}

	// Partition reader from offset 2 of partition 1 (i = 5, 7, 9).
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{bootstrap()}, Topic: topic, Partition: 1, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(2); err != nil {
		t.Fatalf("SetOffset: %v", err)
	}
	for _, i := range []int{5, 7, 9} {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout())
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		if m.Offset != int64(i/2) || string(m.Key) != fmt.Sprintf("k%d", i) || string(m.Value) != fmt.Sprintf("v%d", i) ||
			len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(i) {
			t.Fatalf("read offset %d key %q value %q headers %v, want record %d", m.Offset, m.Key, m.Value, m.Headers, i)
		}
	}

	// Offsets of a group without members (generation -1, no member id).
	group := uniq("segmentio-g")
	oc, err := cl.OffsetCommit(opCtx(t), &kafkago.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafkago.OffsetCommit{topic: {{Partition: 0, Offset: 3, Metadata: "m0"}, {Partition: 1, Offset: 4}}}})
	if err != nil {
		t.Fatalf("OffsetCommit: %v", err)
	}
	for _, p := range oc.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("OffsetCommit partition %d: %v", p.Partition, p.Error)
		}
	}
	of, err := cl.OffsetFetch(opCtx(t), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1}}})
	if err != nil || of.Error != nil {
		t.Fatalf("OffsetFetch: %v / %v", err, of.Error)
	}
	want := map[int]int64{0: 3, 1: 4}
	for _, p := range of.Topics[topic] {
		if p.Error != nil || p.CommittedOffset != want[p.Partition] {
			t.Fatalf("OffsetFetch partition %d: %d (%v), want %d", p.Partition, p.CommittedOffset, p.Error, want[p.Partition])
		}
		if p.Partition == 0 && p.Metadata != "m0" {
			t.Fatalf("OffsetFetch metadata %q, want m0", p.Metadata)
		}
	}
	if len(of.Topics[topic]) != 2 {
		t.Fatalf("OffsetFetch returned %d partitions", len(of.Topics[topic]))
	}

	dt, err := cl.DeleteTopics(opCtx(t), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	if e := dt.Errors[topic]; e != nil {
		t.Fatalf("DeleteTopics %s: %v", topic, e)
	}
}
