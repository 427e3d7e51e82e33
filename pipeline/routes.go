package pipeline

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/collect"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/enrich"
	"github.com/flowgate/flowgate/ship"
)

// RouteKey is an intake key that an intake's routes send events to, with
// what it needs to ship them exactly like an intake of its own.
type RouteKey struct {
	// Intake is the intake with this key in place of its own, and named
	// after the first rule that sends to it ("Shared/paloalto"): its
	// shipper's metrics and logs go by that name.
	Intake config.Intake
	// Subject is the key's buffer subject.
	Subject string
}

// RouteKeys are the distinct keys an intake's routes send to, other than
// the intake's own, in the order of their first rule.
//
// An http intake's intake_keys are its keys, each named after the
// intake and the masked key ("Apps/AAAA****zz").
func RouteKeys(in config.Intake) []RouteKey {
	var keys []RouteKey
	if in.HTTP != nil {
		for _, k := range in.HTTP.IntakeKeys.Keys {
			keys = append(keys, httpKey(in, k))
		}
	}
	seen := map[string]bool{in.IntakeKey: true}
	for _, r := range in.Routes {
		if r.Drop || seen[r.IntakeKey] {
			continue
		}
		seen[r.IntakeKey] = true
		ri := in
		ri.Name = in.Name + "/" + r.Name
		ri.IntakeKey = r.IntakeKey
		ri.Routes, ri.Table = nil, nil
		keys = append(keys, RouteKey{Intake: ri, Subject: RouteSubject(in.Name, r.IntakeKey)})
	}
	return keys
}

// RouteSubject is the buffer subject of the events intake routes to key:
// named by a hash of the key, never the key itself, and the same across
// restarts and reorderings of the rules, so that what waits in the buffer
// is found again.
func RouteSubject(intake, key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return buffer.Subject(fmt.Sprintf("%s>%08x", intake, h.Sum32()))
}

// ownDestination is where the events no rule takes go: "" without a key.
func ownDestination(in config.Intake) string {
	if in.IntakeKey == "" {
		return ""
	}
	return destination(OwnShippings(in))
}

// collectRoutes is what the receiver needs of an intake's routes.
func collectRoutes(in config.Intake) collect.Routes {
	rs := collect.Routes{Table: in.Table}
	dests := map[string]string{}
	for _, k := range RouteKeys(in) {
		dests[k.Intake.IntakeKey] = destination(keyShippings(k, false))
	}
	for _, r := range in.Routes {
		switch {
		case r.Drop:
			rs.Subjects = append(rs.Subjects, "")
		case r.IntakeKey == in.IntakeKey:
			rs.Subjects = append(rs.Subjects, ownDestination(in))
		default:
			rs.Subjects = append(rs.Subjects, dests[r.IntakeKey])
		}
	}
	return rs
}

// shipping is the consumer and shipper of one output of one key: the
// intake's own, or one a route sends to.
type shipping struct {
	Shipping
	cons    *buffer.Consumer
	shipper *ship.Shipper
	// output is the transport held, released at the end.
	output string
	done   chan struct{}
}

// openShipping opens the consumer of a shipping's subject and makes its
// shipper. On error nothing stays open.
func openShipping(ctx context.Context, sh Shipping, c Config, deps Dependencies) (*shipping, error) {
	in, subject := sh.Intake, sh.Subject
	half := c.MemoryEvents / 2
	scfg := ship.DefaultConfig(in.Name)
	scfg.Subject = subject
	scfg.MaxEvents = min(scfg.MaxEvents, max(half/(scfg.InFlight+1), 100))
	scfg.StopGrace = c.StopGrace
	out, err := deps.Transports.acquire(in, scfg.InFlight, deps.Stdout)
	if err != nil {
		return nil, err
	}
	s := &shipping{Shipping: sh, output: out.id}
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	s.cons, err = deps.Buffer.Consume(cctx, subject, max(half/eventsPerMessage, 16))
	cancel()
	if err != nil {
		deps.Transports.release(out.id)
		return nil, err
	}
	s.shipper = ship.New(scfg, s.cons, out.encoder, out.transport, deps.Buffer, deps.Ship, deps.Log)
	return s, nil
}

// close stops the consumer and lets go of the transport.
func (s *shipping) close(deps Dependencies) {
	s.cons.Stop()
	deps.Transports.release(s.output)
}

// Enricher is the enrichment intake in gives its flows, before its routes
// see them: for the route dry run, which must see what the rules see.
func Enricher(in config.Intake, geo *enrich.Geo) *enrich.Enricher {
	return enrich.New(enrichConfig(in, geo))
}
