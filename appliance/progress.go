package appliance

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/httpd"
	"github.com/flowgate/flowgate/pipeline"
	"github.com/flowgate/flowgate/ship"
)

// defaultProgressEvery paces the log lines of a draining backlog.
const defaultProgressEvery = 30 * time.Second

// drainWatch follows each intake's backlog from one look to the next, to
// tell the rate it drains at and when it will be empty.
type drainWatch struct {
	mu sync.Mutex
	// last is each intake's previous look; drains what the status page
	// shows, replaced at each look.
	last   map[string]backlogSample
	drains map[string]httpd.Drain
}

type backlogSample struct {
	at       time.Time
	messages uint64
}

// watchDrain looks at the backlog every interval until ctx ends, logging
// the progress of each intake whose backlog drains.
func (a *Appliance) watchDrain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.lookDrain(ctx)
		}
	}
}

// lookDrain compares what waits now with the previous look: an intake
// whose backlog shrank logs its rate, what is left and the time to empty;
// one that emptied says so once.
func (a *Appliance) lookDrain(ctx context.Context) {
	subj, _, err := a.buf.Backlog(ctx)
	if err != nil {
		a.log.Warn("cannot tell what the buffer holds", "err", err)
		return
	}
	now := time.Now()
	d := &a.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	last, drains := d.last, map[string]httpd.Drain{}
	d.last = map[string]backlogSample{}
	for _, sh := range backlogged(a.running.Load().cfg) {
		in := sh.Intake
		bl := subj[sh.Subject]
		d.last[in.Name] = backlogSample{at: now, messages: bl.Messages}
		prev, ok := last[in.Name]
		if !ok || prev.messages == 0 {
			continue
		}
		if bl.Messages == 0 {
			a.log.Info(fmt.Sprintf("backlog of %q shipped: nothing waits", in.Name), "intake", in.Name)
			continue
		}
		if bl.Messages >= prev.messages {
			continue // growing or stuck: the shipper's warnings say why
		}
		rate := float64(prev.messages-bl.Messages) / now.Sub(prev.at).Seconds()
		dr := httpd.Drain{Rate: rate, Left: ship.Round(time.Duration(float64(bl.Messages) / rate * float64(time.Second)))}
		drains[in.Name] = dr
		a.log.Info(fmt.Sprintf("backlog of %q draining at %.0f buffer messages/s; %s messages (%s bytes) left, empty in about %s",
			in.Name, rate, ship.Count(bl.Messages), ship.Count(bl.Bytes), dr.Left),
			"intake", in.Name, "rate_per_second", strconv.FormatFloat(rate, 'f', 1, 64), "messages", bl.Messages, "bytes", bl.Bytes, "time_left", dr.Left)
	}
	d.drains = drains
}

// drainOf is what the last look found of an intake's drain (zero: not
// draining).
func (a *Appliance) drainOf(intake string) httpd.Drain {
	a.drain.mu.Lock()
	defer a.drain.mu.Unlock()
	return a.drain.drains[intake]
}

// logWaiting says, at start, what waits in the buffer for each intake.
func (a *Appliance) logWaiting(c *config.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subj, _, err := a.buf.Backlog(ctx)
	if err != nil {
		a.log.Warn("cannot tell what the buffer holds", "err", err)
		return
	}
	for _, sh := range backlogged(c) {
		in := sh.Intake
		bl := subj[sh.Subject]
		if bl.Messages == 0 {
			continue
		}
		age := ship.Round(time.Since(bl.Oldest))
		// A message holds up to eventsPerMessage events.
		a.log.Info(fmt.Sprintf("waiting in the buffer for %q: %s messages (up to %s events, %s bytes), the oldest %s old",
			in.Name, ship.Count(bl.Messages), ship.Count(bl.Messages*eventsPerMessage), ship.Count(bl.Bytes), age),
			"intake", in.Name, "messages", bl.Messages, "bytes", bl.Bytes, "oldest_age", age)
	}
	if !a.buf.Embedded() {
		return // Other nodes of the cluster may read what this one does not.
	}
	read := map[string]bool{}
	for _, sh := range backlogged(c) {
		read[sh.Subject] = true
	}
	for _, in := range c.Intakes {
		for _, sh := range pipeline.Shippings(in) {
			read[sh.Subject] = true
		}
	}
	for subject, bl := range subj {
		if !read[subject] {
			a.log.Warn(fmt.Sprintf("%d messages wait in the buffer for no intake, route or output of this configuration (%s): written for one since removed, they ship once it is back", bl.Messages, subject),
				"subject", subject, "messages", bl.Messages)
		}
	}
}

// logChanges says what a reload changed: the intakes added, removed and
// changed, and for those which settings and how (keys masked).
func (a *Appliance) logChanges(old, next *config.Config) {
	before := map[string]config.Intake{}
	for _, in := range old.Intakes {
		before[in.Name] = in
	}
	for _, in := range next.Intakes {
		prev, ok := before[in.Name]
		delete(before, in.Name)
		switch {
		case !ok:
			a.log.Info(fmt.Sprintf("intake %q added: %s port %d, output %s", in.Name, string(in.Kind), in.Port, DescribeOutputs(in)),
				"intake", in.Name, "change", "added")
		case !sameIntake(prev, in):
			a.log.Info(fmt.Sprintf("intake %q changed: %s", in.Name, strings.Join(intakeChanges(prev, in), ", ")),
				"intake", in.Name, "change", "changed")
		}
	}
	for _, in := range old.Intakes {
		if _, gone := before[in.Name]; gone {
			a.log.Info(fmt.Sprintf("intake %q removed (was %s port %d)", in.Name, string(in.Kind), in.Port),
				"intake", in.Name, "change", "removed")
		}
	}
}

// intakeChanges names each setting of an intake that differs, as its
// configuration key, with the old and new values.
func intakeChanges(a, b config.Intake) []string {
	var out []string
	sa, sb := settings(reflect.ValueOf(a)), settings(reflect.ValueOf(b))
	for i, fa := range sa {
		key, va, vb := fa.key, fa.v, sb[i].v
		if reflect.DeepEqual(va.Interface(), vb.Interface()) {
			continue
		}
		switch key {
		case "intake_key":
			out = append(out, fmt.Sprintf("intake_key %s → %s", config.MaskKey(a.IntakeKey), config.MaskKey(b.IntakeKey)))
		case "output":
			// Said with outputs, which holds it.
		case "outputs":
			if da, db := DescribeOutputs(a), DescribeOutputs(b); da != db {
				out = append(out, fmt.Sprintf("output %s → %s", da, db))
			} else {
				out = append(out, "output settings")
			}
		case "exporters":
			out = append(out, "exporters")
		case "routes":
			// As check prints them: the keys masked.
			out = append(out, fmt.Sprintf("routes [%s] → [%s]", describeRules(a), describeRules(b)))
		default:
			out = append(out, fmt.Sprintf("%s %s → %s", key, show(va), show(vb)))
		}
	}
	if len(out) == 0 {
		out = append(out, "TLS files")
	}
	return out
}

// setting is one key of an intake's configuration and its value.
type setting struct {
	key string
	v   reflect.Value
}

// settings lists the keys of the intake v, those of its blocks of keys
// (inline in the file) included, a block it has not as zero values: the
// same keys in the same order for any two intakes.
func settings(v reflect.Value) []setting {
	var out []setting
	t := v.Type()
	for i := range t.NumField() {
		key, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		switch f := v.Field(i); {
		case key == "" && opts == "inline":
			if f.IsNil() {
				f = reflect.New(f.Type().Elem())
			}
			out = append(out, settings(f.Elem())...)
		case key != "" && key != "-":
			out = append(out, setting{key, f})
		}
	}
	return out
}

// describeRules says what an intake's rules do, keys masked.
func describeRules(in config.Intake) string {
	var rules []string
	for _, r := range in.Table.Rules() {
		rules = append(rules, r.Describe(config.MaskKey))
	}
	return strings.Join(rules, "; ")
}

// show writes a setting's value, a pointer's target rather than its
// address.
func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "unset"
		}
		v = v.Elem()
	}
	return fmt.Sprint(v.Interface())
}
