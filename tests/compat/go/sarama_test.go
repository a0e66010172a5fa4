package compat

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersion is the protocol level sarama is told the broker speaks: the
// newest KafkaVersion that sarama v1.61.1 defines (its MaxVersion).
var saramaVersion = sarama.V4_3_1_0

func init() {
	if os.Getenv("KASKADE_COMPAT_GO_LOG") == "debug" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = saramaVersion
	c.ClientID = "compat-go-sarama"
	c.Net.DialTimeout = opTimeout()
	c.Net.ReadTimeout = opTimeout()
	c.Net.WriteTimeout = opTimeout()
	c.Admin.Timeout = opTimeout()
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true // needed by SyncProducer
	c.Producer.Timeout = opTimeout()
	c.Consumer.Return.Errors = true
	return c
}

func newSaramaAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdmin([]string{bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

// TestSaramaSyncProducer: SyncProducer with WaitForAll sends single and
// batched messages; partitions follow the key hash and offsets are 0..n-1;
// a partition consumer reads them back from an offset in the middle.
func TestSaramaSyncProducer(t *testing.T) {
	topic := uniq("sarama-produce")
	_, p := saramaTopicWithProducer(t, topic, 3)

	part, off, err := p.SendMessage(&sarama.ProducerMessage{
		Topic:   topic,
		Key:     sarama.StringEncoder("order-1"),
		Value:   sarama.StringEncoder(`{"orderId":1}`),
		Headers: []sarama.RecordHeader{{Key: []byte("source"), Value: []byte("sarama")}},
	})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if off != 0 {
		t.Fatalf("first message at offset %d, want 0", off)
	}
	var msgs []*sarama.ProducerMessage
	for i := 2; i <= 8; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder("order-1"), // same key: same partition
			Value: sarama.StringEncoder(fmt.Sprintf(`{"orderId":1,"step":%d}`, i)),
		})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	offs := []int64{}
	for _, m := range msgs {
		if m.Partition != part {
			t.Fatalf("same key went to partitions %d and %d", part, m.Partition)
		}
		offs = append(offs, m.Offset)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	if fmt.Sprint(offs) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("batched offsets %v, want 1..7", offs)
	}

	c, err := sarama.NewConsumer([]string{bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()
	hi, err := saramaOffset(t, topic, part, sarama.OffsetNewest)
	if err != nil || hi != 8 {
		t.Fatalf("newest offset %d (%v), want 8", hi, err)
	}
	pc, err := c.ConsumePartition(topic, part, 3)
	if err != nil {
		t.Fatalf("ConsumePartition: %v", err)
	}
	timeout := time.After(opTimeout())
	for want := int64(3); want < 8; want++ {
		select {
		case m := <-pc.Messages():
			if m.Offset != want || string(m.Key) != "order-1" || string(m.Value) != fmt.Sprintf(`{"orderId":1,"step":%d}`, want+1) {
				t.Fatalf("read offset %d key %q value %q, want offset %d", m.Offset, m.Key, m.Value, want)
			}
		case err := <-pc.Errors():
			t.Fatalf("partition consumer: %v", err)
		case <-timeout:
			t.Fatalf("partition consumer: offset %d did not arrive in time", want)
		}
	}
	if err := pc.Close(); err != nil {
		t.Fatalf("PartitionConsumer.Close: %v", err)
	}
	pc2, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("ConsumePartition oldest: %v", err)
	}
	defer pc2.Close()
	select {
	case m := <-pc2.Messages():
		if m.Offset != 0 || len(m.Headers) != 1 || string(m.Headers[0].Key) != "source" || string(m.Headers[0].Value) != "sarama" {
			t.Fatalf("first message: offset %d headers %v", m.Offset, m.Headers)
		}
	case err := <-pc2.Errors():
		t.Fatalf("partition consumer: %v", err)
	case <-time.After(opTimeout()):
		t.Fatalf("first message did not arrive in time")
	}
}

func saramaOffset(t *testing.T, topic string, part int32, which int64) (int64, error) {
	cl, err := sarama.NewClient([]string{bootstrap()}, saramaConfig())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	return cl.GetOffset(topic, part, which)
}

// saramaTopicWithProducer creates `topic` with `parts` partitions, waits
// until its leaders are known, and gives the admin and a SyncProducer
// (closed when the test ends).
func saramaTopicWithProducer(t *testing.T, topic string, parts int32) (sarama.ClusterAdmin, sarama.SyncProducer) {
	t.Helper()
	adm := newSaramaAdmin(t)
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	waitSaramaTopic(t, adm, topic, int(parts))
	p, err := sarama.NewSyncProducer([]string{bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return adm, p
}

func waitSaramaTopic(t *testing.T, adm sarama.ClusterAdmin, topic string, parts int) {
	t.Helper()
	deadline := time.Now().Add(opTimeout())
	var last string
	for time.Now().Before(deadline) {
		md, err := adm.DescribeTopics([]string{topic})
		switch {
		case err != nil:
			last = err.Error()
		case len(md) != 1:
			last = fmt.Sprintf("%d topics", len(md))
		case md[0].Err != sarama.ErrNoError:
			last = md[0].Err.Error()
		case len(md[0].Partitions) != parts:
			last = fmt.Sprintf("%d partitions", len(md[0].Partitions))
		default:
			ok := true
			for _, p := range md[0].Partitions {
				if p.Err != sarama.ErrNoError || p.Leader < 0 {
					ok = false
					last = fmt.Sprintf("partition %d leader %d err %v", p.ID, p.Leader, p.Err)
				}
			}
			if ok {
				waitMetadataEverywhere(t, topic, parts)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not ready: %s", topic, last)
}

// groupHandler consumes every claim, marks and commits each message.
type groupHandler struct {
	mu       sync.Mutex
	got      map[string]string // value -> "partition/offset"
	setups   int
	notify   chan struct{}
	commitFn func(sarama.ConsumerGroupSession)
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.setups++
	h.mu.Unlock()
	return nil
}
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			h.got[string(m.Value)] = fmt.Sprintf("%d/%d", m.Partition, m.Offset)
			h.mu.Unlock()
			sess.MarkMessage(m, "")
			sess.Commit() // synchronous commit (auto-commit is off)
			select {
			case h.notify <- struct{}{}:
			default:
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (h *groupHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// runSaramaGroup consumes topic as a member of group until want distinct
// values arrived; returns them.
func runSaramaGroup(t *testing.T, group, topic string, want int) map[string]string {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cg, err := sarama.NewConsumerGroup([]string{bootstrap()}, group, cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	h := &groupHandler{got: map[string]string{}, notify: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) || ctx.Err() != nil {
					break
				}
				done <- err
				return
			}
		}
		done <- nil
	}()
	var groupErrs []error
	var emu sync.Mutex
	go func() {
		for err := range cg.Errors() {
			emu.Lock()
			groupErrs = append(groupErrs, err)
			emu.Unlock()
		}
	}()
	deadline := time.After(opTimeout())
	for h.count() < want {
		select {
		case <-h.notify:
		case err := <-done:
			cancel()
			_ = cg.Close()
			t.Fatalf("Consume returned %v after %d of %d records", err, h.count(), want)
		case <-deadline:
			cancel()
			_ = cg.Close()
			emu.Lock()
			defer emu.Unlock()
			t.Fatalf("group read %d of %d records in time; errors: %v", h.count(), want, groupErrs)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("ConsumerGroup.Close: %v", err)
	}
	emu.Lock()
	defer emu.Unlock()
	if len(groupErrs) > 0 {
		t.Fatalf("consumer group errors: %v", groupErrs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// TestSaramaConsumerGroup: a ConsumerGroup handler reads everything and
// commits; ListConsumerGroupOffsets shows the end offsets; a second session
// of the same group reads only newer records.
func TestSaramaConsumerGroup(t *testing.T) {
	topic := uniq("sarama-group")
	group := uniq("sarama-group-g")
	adm, p := saramaTopicWithProducer(t, topic, 3)
	send := func(prefix string, n int) map[int32]int64 {
		ends := map[int32]int64{}
		for i := 0; i < n; i++ {
			part, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", prefix, i))})
			if err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			if off+1 > ends[part] {
				ends[part] = off + 1
			}
		}
		return ends
	}
	ends := send("first", 15)
	got := runSaramaGroup(t, group, topic, 15)
	for i := 0; i < 15; i++ {
		if _, ok := got[fmt.Sprintf("first-%d", i)]; !ok {
			t.Fatalf("group did not read first-%d: %v", i, got)
		}
	}
	if len(got) != 15 {
		t.Fatalf("group read %d distinct records, want 15", len(got))
	}
	resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for part := int32(0); part < 3; part++ {
		b := resp.GetBlock(topic, part)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != ends[part] {
			t.Fatalf("committed offset of %d: %+v, want %d", part, b, ends[part])
		}
	}

	send("second", 4)
	got = runSaramaGroup(t, group, topic, 4)
	for v := range got {
		if len(v) < 7 || v[:7] != "second-" {
			t.Fatalf("second session re-read %q although it was committed", v)
		}
	}
}

// TestSaramaClusterAdmin: CreateTopic (and again: ErrTopicAlreadyExists),
// ListTopics, DescribeTopics, DescribeCluster, DescribeConfig,
// CreatePartitions, ListConsumerGroups, DescribeConsumerGroups,
// ListConsumerGroupOffsets, DeleteConsumerGroup, DeleteTopic.
func TestSaramaClusterAdmin(t *testing.T) {
	adm := newSaramaAdmin(t)
	topic := uniq("sarama-admin")
	retention := "86400000"
	err := adm.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention},
	}, false)
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	waitSaramaTopic(t, adm, topic, 2)
	err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("second CreateTopic: %v, want ErrTopicAlreadyExists", err)
	}

	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	d, ok := topics[topic]
	if !ok || d.NumPartitions != 2 || d.ReplicationFactor != 1 {
		t.Fatalf("ListTopics: %s found %v detail %+v", topic, ok, d)
	}
	if v := d.ConfigEntries["retention.ms"]; v == nil || *v != retention {
		t.Fatalf("ListTopics config retention.ms = %v, want %s", v, retention)
	}

	md, err := adm.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 2 {
		t.Fatalf("DescribeTopics: %v %+v", err, md)
	}

	brokers, controller, err := adm.DescribeCluster()
	if err != nil || len(brokers) == 0 {
		t.Fatalf("DescribeCluster: %v, %d brokers", err, len(brokers))
	}
	known := false
	for _, b := range brokers {
		if b.ID() == controller {
			known = true
		}
	}
	if !known {
		t.Fatalf("controller %d is not among the brokers", controller)
	}

	cfg, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	found := false
	for _, e := range cfg {
		if e.Name == "retention.ms" {
			found = true
			if e.Value != retention {
				t.Fatalf("DescribeConfig retention.ms = %q", e.Value)
			}
		}
	}
	if !found {
		t.Fatalf("DescribeConfig lacks retention.ms")
	}

	if err := adm.CreatePartitions(topic, 4, nil, false); err != nil {
		t.Fatalf("CreatePartitions: %v", err)
	}
	waitSaramaTopic(t, adm, topic, 4)

	// A group with a live member, for the group calls.
	group := uniq("sarama-admin-g")
	pCfg := saramaConfig()
	pCfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{bootstrap()}, pCfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()
	for i := 0; i < 4; i++ {
		part, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(i), Value: sarama.StringEncoder(fmt.Sprint(i))})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		if part != int32(i) || off != 0 {
			t.Fatalf("message for partition %d went to %d/%d", i, part, off)
		}
	}
	cgCfg := saramaConfig()
	cgCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup([]string{bootstrap()}, group, cgCfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	h := &groupHandler{got: map[string]string{}, notify: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	consumeDone := make(chan struct{})
	go func() {
		defer close(consumeDone)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				return
			}
		}
	}()
	stop := func() {
		cancel()
		<-consumeDone
		_ = cg.Close()
	}
	deadline := time.Now().Add(opTimeout())
	for h.count() < 4 {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("group member read %d of 4 records", h.count())
		}
		time.Sleep(50 * time.Millisecond)
	}

	groups, err := adm.ListConsumerGroups()
	if err != nil {
		stop()
		t.Fatalf("ListConsumerGroups: %v", err)
	}
	if groups[group] != "consumer" {
		stop()
		t.Fatalf("ListConsumerGroups: %s -> %q, want consumer", group, groups[group])
	}
	desc, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 {
		stop()
		t.Fatalf("DescribeConsumerGroups: %v %v", err, desc)
	}
	g := desc[0]
	if g.Err != sarama.ErrNoError || g.GroupId != group || g.State != "Stable" || g.ProtocolType != "consumer" || len(g.Members) != 1 {
		stop()
		t.Fatalf("DescribeConsumerGroups: err %v id %s state %q protocol type %q members %d", g.Err, g.GroupId, g.State, g.ProtocolType, len(g.Members))
	}
	for _, m := range g.Members {
		a, err := m.GetMemberAssignment()
		if err != nil || len(a.Topics[topic]) != 4 {
			stop()
			t.Fatalf("member assignment %v (%v), want 4 partitions of %s", a, err, topic)
		}
	}
	stop()

	offs, err := adm.ListConsumerGroupOffsets(group, nil) // nil: all partitions
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for part := int32(0); part < 4; part++ {
		b := offs.GetBlock(topic, part)
		if b == nil || b.Err != sarama.ErrNoError || b.Offset != 1 {
			t.Fatalf("committed offset of %d: %+v, want 1", part, b)
		}
	}
	deadline = time.Now().Add(opTimeout())
	for {
		err := adm.DeleteConsumerGroup(group)
		if err == nil {
			break
		}
		if !errors.Is(err, sarama.ErrNonEmptyGroup) || time.Now().After(deadline) {
			t.Fatalf("DeleteConsumerGroup: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	deadline = time.Now().Add(opTimeout())
	for {
		topics, err := adm.ListTopics()
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if _, ok := topics[topic]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted topic still listed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := adm.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("second DeleteTopic: %v, want ErrUnknownTopicOrPartition", err)
	}
}
