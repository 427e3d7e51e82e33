package buffer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A destination of two subjects stores each message once under each,
// whether published and waited for or handed to a Publisher (one
// outcome per message, its copies together); the same message published
// again (a caller retrying after a failure) is not stored again.
func TestADestinationStoresACopyPerSubject(t *testing.T) {
	b := open(t, t.TempDir(), 64<<20)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, second := Subject("in"), Subject("in#archive")
	dest := Destination(first, second)
	for i := range 3 {
		if err := b.Publish(ctx, dest, fmt.Appendf(nil, "waited %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, dest, []byte("waited 2")); err != nil {
		t.Fatal(err)
	}
	outcomes := make(chan int, 10)
	p := b.Publisher(dest, func(records int, err error) {
		if err != nil {
			t.Errorf("publisher: %v", err)
		}
		outcomes <- records
	})
	for i := range 2 {
		p.Publish(fmt.Appendf(nil, "async %d", i), 10+i)
	}
	p.Close()
	close(outcomes)
	var got []int
	for n := range outcomes {
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[10 11]" {
		t.Errorf("outcomes %v, want one per message, in order", got)
	}
	want := "[waited 0 waited 1 waited 2 async 0 async 1]"
	for _, subject := range []string{first, second} {
		c, err := b.Consume(ctx, subject, 16)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for range 5 {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, string(m.Data()))
		}
		c.Stop()
		if fmt.Sprint(msgs) != want {
			t.Errorf("%s holds %v, want %s", subject, msgs, want)
		}
		if n, err := b.Depth(ctx, subject); err != nil || n != 5 {
			t.Errorf("%s holds %d messages (%v), want 5", subject, n, err)
		}
	}
}

// What a second output costs the receiving side: the Publisher stores a
// 16 KiB message (about 64 syslog records) under one subject, or two.
func BenchmarkPublishOneSubject(b *testing.B)  { benchmarkPublish(b, 1) }
func BenchmarkPublishTwoSubjects(b *testing.B) { benchmarkPublish(b, 2) }

func benchmarkPublish(b *testing.B, outputs int) {
	buf, err := Open(context.Background(), Config{Dir: b.TempDir(), MaxBytes: 4 << 30}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer buf.Close()
	subjects := []string{Subject("bench")}
	if outputs == 2 {
		subjects = append(subjects, Subject("bench#2"))
	}
	payload := make([]byte, 16<<10)
	p := buf.Publisher(Destination(subjects...), func(_ int, err error) {
		if err != nil {
			b.Error(err)
		}
	})
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Distinct content: copies' ids derive from it.
		payload[0], payload[1], payload[2], payload[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		// Encoded afresh each time, as the intakes do.
		p.Publish(append(p.Buffer(), payload...), 64)
	}
	p.Close()
}
