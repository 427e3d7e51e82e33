package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/receiver/httpintake"
	"github.com/flowgate/flowgate/tlsfiles"
)

// httpKeysBucket remembers the keys http intakes with intake_keys: any
// have taken, so that after a restart what waits in the buffer for each
// is shipped.
const httpKeysBucket = "flowgate_http_keys"

// httpReceiver binds an http intake. Its intake_keys ship as route keys
// do (RouteKeys); with intake_keys: any, it opens the shipping of each key
// it took before. On error the caller closes what was opened.
func (it *Intake) httpReceiver(ctx context.Context, c Config) (*httpintake.Intake, *tlsfiles.Server, error) {
	in, deps := c.Intake, it.deps
	keys := &httpKeys{it: it, c: c, subjects: map[string]string{}}
	for _, k := range RouteKeys(in) {
		keys.subjects[k.Intake.IntakeKey] = destination(keyShippings(k, false))
	}
	if in.HTTP.IntakeKeys.Any {
		// The intake's memory is shared by the keys it may ship to.
		keys.c.MemoryEvents = c.MemoryEvents / max(in.HTTP.MaxKeys, 1)
		known, err := keys.load(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range known {
			if _, err := keys.open(ctx, k); err != nil {
				return nil, nil, err
			}
		}
	}
	hc := httpintake.DefaultConfig(in.Name, in.ListenAddr())
	if in.Stream.MaxConnections > 0 {
		hc.MaxConnections = in.Stream.MaxConnections
	}
	var files *tlsfiles.Server
	if t := in.TLS; t != nil { // nil with plain_http
		var err error
		files, err = deps.TLS.Server(in.Name, t.CertFile, t.KeyFile, t.CAFile, t.RequireClientCert())
		if err != nil {
			return nil, nil, err
		}
		hc.TLS = files.Config()
	}
	hi, err := httpintake.New(hc, httpintake.Dependencies{Keys: keys, Store: deps.Buffer, Metrics: deps.HTTPIntake,
		Produced: deps.Collect.Produced(in.Name), OverMaxConnections: deps.Collect.MaxConnectionsRefused(in.Name), Log: deps.Log})
	if err != nil {
		files.Close()
		return nil, nil, err
	}
	return hi, files, nil
}

// httpKeys are an http intake's keys and their buffer destinations: what the
// receiver asks where a key's events go.
type httpKeys struct {
	it *Intake
	// c is the intake's configuration with each key's share of memory.
	c  Config
	kv *buffer.KV
	// mu makes one request at a time set a new key up.
	mu       sync.Mutex
	subjects map[string]string
}

// Subject is the destination of key's events (a subject per output of
// the intake, see buffer.Destination): a key of intake_keys, or, for
// intake_keys: any, any well-formed key up to max_keys, remembered and
// shipped from its first request on.
func (h *httpKeys) Subject(ctx context.Context, key string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.subjects[key]; ok {
		return s, nil
	}
	in := h.c.Intake
	switch {
	case !in.HTTP.IntakeKeys.Any:
		return "", httpintake.ErrUnknownKey
	case config.CheckKey(key) != nil:
		return "", httpintake.ErrMalformedKey
	case len(h.subjects) >= in.HTTP.MaxKeys:
		return "", fmt.Errorf("%w (%d)", httpintake.ErrMaxKeys, in.HTTP.MaxKeys)
	}
	// Remembered before its first event is stored: a restart finds it.
	if err := h.kv.Save(ctx, kvKey(in.Name, key), []byte(key)); err != nil {
		return "", fmt.Errorf("remembering key %s: %w", config.MaskKey(key), err)
	}
	opened, err := h.open(ctx, key)
	if err != nil {
		return "", err
	}
	h.it.shipsMu.Lock()
	if h.it.shipCtx != nil {
		for _, s := range opened {
			h.it.runShipper(s)
		}
	}
	h.it.shipsMu.Unlock()
	return h.subjects[key], nil
}

// open opens the shippings of key, one per output, adds them to the
// intake and returns them.
func (h *httpKeys) open(ctx context.Context, key string) ([]*shipping, error) {
	shs := keyShippings(httpKey(h.c.Intake, key), false)
	var opened []*shipping
	for _, sh := range shs {
		s, err := openShipping(ctx, sh, h.c, h.it.deps)
		if err != nil {
			for _, o := range opened {
				o.close(h.it.deps)
			}
			return nil, fmt.Errorf("key %s: %w", config.MaskKey(key), err)
		}
		opened = append(opened, s)
	}
	h.it.shipsMu.Lock()
	h.it.ships = append(h.it.ships, opened...)
	h.it.shipsMu.Unlock()
	h.subjects[key] = destination(shs)
	return opened, nil
}

// httpKey is one key of an http intake, shipped as an intake of its own
// named after the intake and the masked key.
func httpKey(in config.Intake, key string) RouteKey {
	ki := in
	ki.Name = in.Name + "/" + config.MaskKey(key)
	ki.IntakeKey = key
	// Its own keys are not the key's: a copy of the block without them.
	h := *in.HTTP
	h.IntakeKeys = config.KeyList{}
	ki.HTTP = &h
	return RouteKey{Intake: ki, Subject: RouteSubject(in.Name, key)}
}

// load opens the bucket of keys and returns those the intake took before.
func (h *httpKeys) load(ctx context.Context) ([]string, error) {
	var err error
	cctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if h.kv, err = h.it.deps.Buffer.KV(cctx, httpKeysBucket, "the keys http intakes with intake_keys: any took"); err != nil {
		return nil, err
	}
	var keys []string
	prefix := kvKey(h.c.Intake.Name, "")
	err = h.kv.Watch(cctx, func(k string, v []byte) {
		if v != nil && len(k) > len(prefix) && strings.HasPrefix(k, prefix) {
			keys = append(keys, string(v))
		}
	})
	// Watch keeps watching until cctx ends, which the deferred cancel does.
	return keys, err
}

// kvKey names key of intake in the bucket by hashes: bucket keys allow
// few characters, and intake names any.
func kvKey(intake, key string) string {
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:12]) }
	if key == "" {
		return h(intake) + "."
	}
	return h(intake) + "." + h(key)
}
