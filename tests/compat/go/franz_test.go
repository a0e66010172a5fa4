package compat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzProduceSyncAsync: idempotent (franz-go's default) ProduceSync and
// async Produce with promises; offsets are 0..n-1 per partition in send order;
// same key, same partition; list start/end offsets match.
func TestFranzProduceSyncAsync(t *testing.T) {
	topic := uniq("franz-produce")
	createTopic(t, topic, 3)
	cl := newFranz(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))

	// Sync: 6 records to partition-by-key.
	var recs []*kgo.Record
	for i := 0; i < 6; i++ {
		recs = append(recs, &kgo.Record{Key: []byte("k-sync"), Value: []byte(fmt.Sprintf("sync-%d", i))})
	}
	res := cl.ProduceSync(opCtx(t), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	syncPart := res[0].Record.Partition
	for i, r := range res {
		if r.Record.Partition != syncPart {
			t.Fatalf("same key went to partitions %d and %d", syncPart, r.Record.Partition)
		}
		if r.Record.Offset != int64(i) {
			t.Fatalf("sync record %d at offset %d", i, r.Record.Offset)
		}
		if r.Record.ProducerID < 0 {
			t.Fatalf("idempotent producer has no producer id: %d", r.Record.ProducerID)
		}
	}

	// Async: 30 records with different keys, promises collect offsets.
	var mu sync.Mutex
	var errs []error
	counts := map[int32]int64{syncPart: 6}
	offsets := map[int32][]int64{}
	for i := 0; i < 30; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprintf("k-%d", i)), Value: []byte(fmt.Sprintf("async-%d", i))}
		cl.Produce(opCtx(t), r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			offsets[r.Partition] = append(offsets[r.Partition], r.Offset)
		})
	}
	if err := cl.Flush(opCtx(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("async produce errors: %v", errs)
	}
	total := 0
	for p, os := range offsets {
		// Promises run in order per partition.
		for i, o := range os {
			if o != counts[p]+int64(i) {
				t.Fatalf("partition %d: async offsets %v do not follow %d", p, os, counts[p])
			}
		}
		counts[p] += int64(len(os))
		total += len(os)
	}
	if total != 30 {
		t.Fatalf("%d async records acknowledged, want 30", total)
	}

	adm := newAdm(t)
	ends, err := adm.ListEndOffsets(opCtx(t), topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	starts, err := adm.ListStartOffsets(opCtx(t), topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		e, ok := ends.Lookup(topic, p)
		if !ok || e.Err != nil || e.Offset != counts[p] {
			t.Fatalf("end offset of %d: %+v, want %d", p, e, counts[p])
		}
		s, ok := starts.Lookup(topic, p)
		if !ok || s.Err != nil || s.Offset != 0 {
			t.Fatalf("start offset of %d: %+v, want 0", p, s)
		}
	}
}

// TestFranzConsumePartitions: direct partition consumption (no group) from an
// exact offset; key, value, headers and timestamp come back as produced.
func TestFranzConsumePartitions(t *testing.T) {
	topic := uniq("franz-direct")
	createTopic(t, topic, 2)
	prod := newFranz(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ts := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{
			Partition: int32(i % 2),
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     []byte(fmt.Sprintf("value-%d", i)),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "dup", Value: []byte("a")}, {Key: "dup", Value: []byte("b")}},
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		})
	}
	if err := prod.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	// Partition 0 holds i=0,2,4,6,8 at offsets 0..4; start at offset 2 (i=4).
	// Partition 1 from the start.
	cons := newFranz(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(2), 1: kgo.NewOffset().AtStart()},
	}))
	got := pollN(t, cons, 8)
	if len(got) != 8 {
		t.Fatalf("got %d records, want 8", len(got))
	}
	for _, r := range got {
		i := int(r.Offset)*2 + int(r.Partition)
		if r.Partition == 0 && r.Offset < 2 {
			t.Fatalf("read partition 0 offset %d before the start offset 2", r.Offset)
		}
		if string(r.Key) != fmt.Sprintf("key-%d", i) || string(r.Value) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("%d/%d: key %q value %q, want key-%d value-%d", r.Partition, r.Offset, r.Key, r.Value, i, i)
		}
		if len(r.Headers) != 3 || r.Headers[0].Key != "i" || string(r.Headers[0].Value) != fmt.Sprint(i) ||
			r.Headers[1].Key != "dup" || string(r.Headers[1].Value) != "a" || string(r.Headers[2].Value) != "b" {
			t.Fatalf("%d/%d: headers %v", r.Partition, r.Offset, r.Headers)
		}
		if want := ts.Add(time.Duration(i) * time.Millisecond); !r.Timestamp.Equal(want) {
			t.Fatalf("%d/%d: timestamp %v, want %v", r.Partition, r.Offset, r.Timestamp, want)
		}
	}
}

// TestFranzGroupConsumeCommit: a kgo.ConsumerGroup member reads everything,
// commits; kadm sees the group (ListGroups, DescribeGroups while it is a
// member: Stable, consumer protocol, all partitions assigned), its committed
// offsets (FetchOffsets) and zero lag; after it leaves, a new member of the
// same group reads only records produced after the commit; DeleteGroup.
func TestFranzGroupConsumeCommit(t *testing.T) {
	topic := uniq("franz-group")
	group := uniq("franz-group-g")
	createTopic(t, topic, 3)
	prod := newFranz(t, kgo.DefaultProduceTopic(topic))
	produce := func(prefix string, n int) {
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("%s-%d", prefix, i)), Value: []byte(prefix)})
		}
		if err := prod.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("ProduceSync: %v", err)
		}
	}
	produce("first", 12)

	c1, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap()),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.WithLogger(kgo.BasicLogger(stderrWriter{}, franzLogLevel(), nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	got := pollN(t, c1, 12)
	if len(got) != 12 {
		c1.Close()
		t.Fatalf("group member read %d records, want 12", len(got))
	}
	if err := c1.CommitUncommittedOffsets(opCtx(t)); err != nil {
		c1.Close()
		t.Fatalf("CommitUncommittedOffsets: %v", err)
	}

	adm := newAdm(t)
	lg, err := adm.ListGroups(opCtx(t))
	if err != nil {
		c1.Close()
		t.Fatalf("ListGroups: %v", err)
	}
	if _, ok := lg[group]; !ok {
		c1.Close()
		t.Fatalf("ListGroups does not list %s: %v", group, lg.Groups())
	}
	dg, err := adm.DescribeGroups(opCtx(t), group)
	if err != nil {
		c1.Close()
		t.Fatalf("DescribeGroups: %v", err)
	}
	d := dg[group]
	if d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || len(d.Members) != 1 {
		c1.Close()
		t.Fatalf("DescribeGroups: err %v state %q protocol type %q members %d", d.Err, d.State, d.ProtocolType, len(d.Members))
	}
	if parts := d.AssignedPartitions()[topic]; len(parts) != 3 {
		c1.Close()
		t.Fatalf("assigned partitions %v, want all 3", d.AssignedPartitions())
	}
	ends := endOffsets(t, topic)
	offs, err := adm.FetchOffsets(opCtx(t), group)
	if err != nil {
		c1.Close()
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p, e := range ends {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != e {
			c1.Close()
			t.Fatalf("committed offset of %d: %+v (found %v), want %d", p, o, ok, e)
		}
	}
	lag, err := adm.Lag(opCtx(t), group)
	if err != nil {
		c1.Close()
		t.Fatalf("Lag: %v", err)
	}
	if l := lag[group]; l.Error() != nil || l.Lag.Total() != 0 {
		c1.Close()
		t.Fatalf("lag: err %v total %d, want 0", l.Error(), l.Lag.Total())
	}
	c1.Close() // leaves the group

	produce("second", 5)
	c2 := newFranz(t,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got = pollN(t, c2, 5)
	for _, r := range got {
		if string(r.Value) != "second" {
			t.Fatalf("new member re-read %s/%d/%d (%q) despite the commit", r.Topic, r.Partition, r.Offset, r.Value)
		}
	}
	if len(got) != 5 {
		t.Fatalf("new member read %d records, want 5", len(got))
	}
	c2.Close()

	// The group is empty now; delete it.
	deadline := time.Now().Add(opTimeout())
	for {
		resp, err := adm.DeleteGroup(opCtx(t), group)
		if err == nil && resp.Err == nil {
			break
		}
		// Leaving may still be completing: NON_EMPTY_GROUP is retried.
		if (err != nil && !errors.Is(err, kerr.NonEmptyGroup)) || (resp.Err != nil && !errors.Is(resp.Err, kerr.NonEmptyGroup)) || time.Now().After(deadline) {
			t.Fatalf("DeleteGroup: %v / %v", err, resp.Err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	lg, err = adm.ListGroups(opCtx(t))
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if _, ok := lg[group]; ok {
		t.Fatalf("deleted group %s still listed", group)
	}
}

type stderrWriter struct{}

func (stderrWriter) Write(p []byte) (int, error) { return osStderr.Write(p) }

// TestFranzTransactions: a transactional producer commits, aborts, commits;
// a read_committed consumer sees only the committed records, a
// read_uncommitted one sees the aborted ones too; the end offsets count the
// control records.
func TestFranzTransactions(t *testing.T) {
	topic := uniq("franz-txn")
	createTopic(t, topic, 1)
	txid := uniq("franz-txid")
	prod := newFranz(t, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txid), kgo.TransactionTimeout(30*time.Second))

	txn := func(prefix string, n int, end kgo.TransactionEndTry) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("BeginTransaction: %v", err)
		}
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
		}
		if err := prod.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce in txn %s: %v", prefix, err)
		}
		if err := prod.EndTransaction(opCtx(t), end); err != nil {
			t.Fatalf("EndTransaction(%s, %v): %v", prefix, end, err)
		}
	}
	txn("commit1", 3, kgo.TryCommit)
	txn("abort", 2, kgo.TryAbort)
	txn("commit2", 1, kgo.TryCommit)

	// 3 + marker + 2 + marker + 1 + marker = 9.
	if e := endOffsets(t, topic)[0]; e != 9 {
		t.Fatalf("end offset %d, want 9 (6 records + 3 control records)", e)
	}

	readAll := func(level kgo.IsolationLevel, want int) []string {
		cl := newFranz(t,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(level),
		)
		recs := pollN(t, cl, want)
		var vals []string
		for _, r := range recs {
			vals = append(vals, string(r.Value))
		}
		return vals
	}
	committed := readAll(kgo.ReadCommitted(), 4)
	if fmt.Sprint(committed) != "[commit1-0 commit1-1 commit1-2 commit2-0]" {
		t.Fatalf("read_committed read %v", committed)
	}
	uncommitted := readAll(kgo.ReadUncommitted(), 6)
	if fmt.Sprint(uncommitted) != "[commit1-0 commit1-1 commit1-2 abort-0 abort-1 commit2-0]" {
		t.Fatalf("read_uncommitted read %v", uncommitted)
	}

	// kadm sees the transactional id.
	adm := newAdm(t)
	dt, err := adm.DescribeTransactions(opCtx(t), txid)
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	d, ok := dt[txid]
	if !ok || d.Err != nil || d.ProducerID < 0 {
		t.Fatalf("DescribeTransactions %s: %+v (found %v)", txid, d, ok)
	}
	if d.State != "CompleteCommit" {
		t.Fatalf("transaction state %q, want CompleteCommit", d.State)
	}
}

// TestFranzGroupTransactSession: consume-transform-produce with
// kgo.GroupTransactSession (AddOffsetsToTxn + TxnOffsetCommit): every input
// record becomes one output record, read_committed sees them all, and the
// group's committed offsets are the input's end offsets.
func TestFranzGroupTransactSession(t *testing.T) {
	in := uniq("franz-eos-in")
	out := uniq("franz-eos-out")
	group := uniq("franz-eos-g")
	createTopic(t, in, 2)
	createTopic(t, out, 2)
	prod := newFranz(t, kgo.DefaultProduceTopic(in))
	var recs []*kgo.Record
	for i := 0; i < 20; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("in-%d", i))})
	}
	if err := prod.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(bootstrap()),
		kgo.TransactionalID(uniq("franz-eos-txid")),
		kgo.TransactionTimeout(30*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(out),
		kgo.RequireStableFetchOffsets(),
		kgo.WithLogger(kgo.BasicLogger(stderrWriter{}, franzLogLevel(), nil)),
	)
	if err != nil {
		t.Fatalf("NewGroupTransactSession: %v", err)
	}
	defer sess.Close()

	done := 0
	deadline := time.Now().Add(2 * opTimeout())
	for done < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("transformed %d of 20 records in time", done)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := sess.PollFetches(ctx)
		cancel()
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", tp, p, err)
			}
		})
		batch := fs.Records()
		if len(batch) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("Begin: %v", err)
		}
		var outs []*kgo.Record
		for _, r := range batch {
			outs = append(outs, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value[3:]...)})
		}
		if err := sess.ProduceSync(opCtx(t), outs...).FirstErr(); err != nil {
			t.Fatalf("produce in session: %v", err)
		}
		committed, err := sess.End(opCtx(t), kgo.TryCommit)
		if err != nil {
			t.Fatalf("End: %v", err)
		}
		if committed {
			done += len(batch)
		}
	}
	if done != 20 {
		t.Fatalf("transformed %d records, want 20", done)
	}

	cons := newFranz(t,
		kgo.ConsumeTopics(out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	got := pollN(t, cons, 20)
	var vals []string
	for _, r := range got {
		vals = append(vals, string(r.Value))
	}
	sort.Strings(vals)
	var want []string
	for i := 0; i < 20; i++ {
		want = append(want, fmt.Sprintf("out-%d", i))
	}
	sort.Strings(want)
	if fmt.Sprint(vals) != fmt.Sprint(want) {
		t.Fatalf("output records %v, want %v", vals, want)
	}

	adm := newAdm(t)
	offs, err := adm.FetchOffsets(opCtx(t), group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p, e := range endOffsets(t, in) {
		o, ok := offs.Lookup(in, p)
		if !ok || o.Err != nil || o.At != e {
			t.Fatalf("group offset for %s/%d: %+v (found %v), want %d", in, p, o, ok, e)
		}
	}
}

// TestFranzAdminTopics: kadm create/list/describe/alter/delete of topics,
// create partitions, describe/alter configs, delete records, list offsets.
func TestFranzAdminTopics(t *testing.T) {
	adm := newAdm(t)
	topic := uniq("franz-admin")
	retention := "3600000"
	cr, err := adm.CreateTopic(opCtx(t), 2, 1, map[string]*string{"retention.ms": &retention}, topic)
	if err != nil || cr.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, cr.Err)
	}
	if cr.NumPartitions != 2 || cr.ReplicationFactor != 1 {
		t.Fatalf("CreateTopic answered %d partitions rf %d", cr.NumPartitions, cr.ReplicationFactor)
	}
	waitTopicReady(t, adm, topic, 2)

	// Creating it again: TOPIC_ALREADY_EXISTS.
	if _, err := adm.CreateTopic(opCtx(t), 2, 1, nil, topic); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("second CreateTopic: %v, want TOPIC_ALREADY_EXISTS", err)
	}

	td, err := adm.ListTopics(opCtx(t))
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if d, ok := td[topic]; !ok || len(d.Partitions) != 2 || d.IsInternal {
		t.Fatalf("ListTopics: %s found %v, %d partitions", topic, ok, len(d.Partitions))
	}
	if d := td[topic]; d.ID == (kadm.TopicID{}) {
		t.Fatalf("topic %s has a zero topic id", topic)
	}

	// Configs: the create-time value is a dynamic topic config.
	rc, err := adm.DescribeTopicConfigs(opCtx(t), topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	cfg := func(rc kadm.ResourceConfigs, key string) (string, bool) {
		for _, r := range rc {
			if r.Err != nil {
				t.Fatalf("describe configs of %s: %v", r.Name, r.Err)
			}
			for _, c := range r.Configs {
				if c.Key == key && c.Value != nil {
					return *c.Value, true
				}
			}
		}
		return "", false
	}
	if v, ok := cfg(rc, "retention.ms"); !ok || v != retention {
		t.Fatalf("retention.ms = %q (%v), want %s", v, ok, retention)
	}
	if _, ok := cfg(rc, "cleanup.policy"); !ok {
		t.Fatalf("DescribeTopicConfigs lacks cleanup.policy")
	}
	ar, err := adm.AlterTopicConfigs(opCtx(t), []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("2000000")},
	}, topic)
	if err != nil {
		t.Fatalf("AlterTopicConfigs: %v", err)
	}
	for _, r := range ar {
		if r.Err != nil {
			t.Fatalf("AlterTopicConfigs %s: %v %s", r.Name, r.Err, r.ErrMessage)
		}
	}
	deadline := time.Now().Add(opTimeout())
	for {
		rc, err = adm.DescribeTopicConfigs(opCtx(t), topic)
		if err != nil {
			t.Fatalf("DescribeTopicConfigs: %v", err)
		}
		r, _ := cfg(rc, "retention.ms")
		m, _ := cfg(rc, "max.message.bytes")
		if r == "7200000" && m == "2000000" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after alter: retention.ms=%q max.message.bytes=%q", r, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Invalid value: an error, not success.
	ar, err = adm.AlterTopicConfigs(opCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("not-a-number")}}, topic)
	if err == nil && (len(ar) == 0 || ar[0].Err == nil) {
		t.Fatalf("altering retention.ms to not-a-number succeeded")
	}

	// Create partitions: 2 -> 5.
	cp, err := adm.CreatePartitions(opCtx(t), 3, topic)
	if err != nil || cp[topic].Err != nil {
		t.Fatalf("CreatePartitions: %v / %v", err, cp[topic].Err)
	}
	waitTopicReady(t, adm, topic, 5)

	// Produce 10 records to partition 4 (a new one), delete records before 6.
	prod := newFranz(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Partition: 4, Value: []byte(fmt.Sprint(i))})
	}
	if err := prod.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync to new partition: %v", err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 4, At: 6})
	dr, err := adm.DeleteRecords(opCtx(t), os)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if r, ok := dr.Lookup(topic, 4); !ok || r.Err != nil || r.LowWatermark != 6 {
		t.Fatalf("DeleteRecords: %+v (found %v), want low watermark 6", r, ok)
	}
	starts, err := adm.ListStartOffsets(opCtx(t), topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	if s, _ := starts.Lookup(topic, 4); s.Err != nil || s.Offset != 6 {
		t.Fatalf("start offset after DeleteRecords: %+v, want 6", s)
	}
	if e := endOffsets(t, topic)[4]; e != 10 {
		t.Fatalf("end offset %d, want 10", e)
	}
	cons := newFranz(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {4: kgo.NewOffset().AtStart()}}))
	got := pollN(t, cons, 4)
	if got[0].Offset != 6 || string(got[0].Value) != "6" {
		t.Fatalf("first record after DeleteRecords: offset %d value %q, want 6", got[0].Offset, got[0].Value)
	}
	// Offsets by timestamp: records produced now are after a minute ago.
	lo, err := adm.ListOffsetsAfterMilli(opCtx(t), time.Now().Add(-time.Minute).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	if o, _ := lo.Lookup(topic, 4); o.Err != nil || o.Offset != 6 {
		t.Errorf("ListOffsets by timestamp (a minute ago) after DeleteRecords to 6: %+v, want offset 6 (the log start offset)", o)
	}

	// Delete: gone from the listing; deleting again is UNKNOWN_TOPIC_OR_PARTITION.
	dl, err := adm.DeleteTopics(opCtx(t), topic)
	if err != nil || dl[topic].Err != nil {
		t.Fatalf("DeleteTopics: %v / %v", err, dl[topic].Err)
	}
	deadline = time.Now().Add(opTimeout())
	for {
		td, err := adm.ListTopics(opCtx(t))
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if !td.Has(topic) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted topic still listed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	dl, err = adm.DeleteTopics(opCtx(t), topic)
	if err == nil {
		err = dl[topic].Err
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

// TestFranzAdminCluster: describe the cluster and its brokers, broker
// configs, API versions, and coordinators.
func TestFranzAdminCluster(t *testing.T) {
	adm := newAdm(t)
	md, err := adm.BrokerMetadata(opCtx(t))
	if err != nil {
		t.Fatalf("BrokerMetadata: %v", err)
	}
	if md.Cluster == "" || len(md.Brokers) == 0 {
		t.Fatalf("cluster id %q, %d brokers", md.Cluster, len(md.Brokers))
	}
	bs, err := adm.ListBrokers(opCtx(t))
	if err != nil || len(bs) == 0 {
		t.Fatalf("ListBrokers: %v (%d)", err, len(bs))
	}
	ids := map[int32]bool{}
	for _, b := range bs {
		if b.Host == "" || b.Port <= 0 {
			t.Fatalf("broker %+v has no address", b)
		}
		ids[b.NodeID] = true
	}
	if md.Controller >= 0 && !ids[md.Controller] {
		// Kafka in KRaft reports a random broker as the "controller" to clients; it must be a listed broker.
		t.Fatalf("controller %d is not a listed broker %v", md.Controller, bs)
	}
	rc, err := adm.DescribeBrokerConfigs(opCtx(t), bs[0].NodeID)
	if err != nil {
		t.Fatalf("DescribeBrokerConfigs: %v", err)
	}
	found := false
	for _, r := range rc {
		if r.Err != nil {
			t.Fatalf("DescribeBrokerConfigs %s: %v", r.Name, r.Err)
		}
		for _, c := range r.Configs {
			if c.Key == "log.retention.hours" || c.Key == "num.partitions" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("broker configs lack num.partitions / log.retention.hours")
	}
	av, err := adm.ApiVersions(opCtx(t))
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, b := range av {
		if b.Err != nil {
			t.Fatalf("ApiVersions of %d: %v", b.NodeID, b.Err)
		}
		for _, key := range []int16{0, 1, 3, 18} { // Produce, Fetch, Metadata, ApiVersions
			if _, _, ok := b.KeyVersions(key); !ok {
				t.Fatalf("broker %d does not advertise API key %d", b.NodeID, key)
			}
		}
	}
	group := uniq("franz-coord")
	fc := adm.FindGroupCoordinators(opCtx(t), group)
	if c, ok := fc[group]; !ok || c.Err != nil || !ids[c.NodeID] {
		t.Fatalf("FindGroupCoordinators: %+v (found %v)", c, ok)
	}
}
